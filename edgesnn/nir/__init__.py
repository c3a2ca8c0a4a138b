"""NIR import: run models exported from snnTorch, Norse and other NIR writers in the core.

``load_nir(path, exporter="snntorch")`` returns a `edgesnn.core.NetworkSpec`;
``import_nir(...)`` also returns a report of the mapping (`NirImport.summary()`). The mapping,
its time conventions and the hop compensation are described in `edgesnn.nir.importer`.
"""

from edgesnn.nir.importer import (
    EXPORTERS,
    LayerMap,
    NirImport,
    ProjectionMap,
    import_nir,
    load_nir,
)
from edgesnn.nir.reader import NirGraph, NirNode, read_nir_graph

__all__ = [
    "EXPORTERS",
    "LayerMap",
    "NirGraph",
    "NirImport",
    "NirNode",
    "ProjectionMap",
    "import_nir",
    "load_nir",
    "read_nir_graph",
]
