"""Dependencies run one way: every module is parsed (ast, nothing imported) and every import
edge, lazy imports inside functions included, is checked against the rules below."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: top-level source folders and the package name each is installed as (setup.py)
ROOTS = {"edgesnn": REPO / "edgesnn", "edgesnn_drivers": REPO / "drivers"}


@dataclass(frozen=True)
class Edge:
    module: str  # importing module, dotted
    target: str  # imported module (or module.name for `from m import name`)
    path: str
    line: int


def _module_name(pkg: str, root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([pkg, *parts])


def _edges() -> list[Edge]:
    out: list[Edge] = []
    for pkg, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            mod = _module_name(pkg, root, path)
            is_pkg = path.name == "__init__.py"
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            rel = str(path.relative_to(REPO))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    out += [Edge(mod, a.name, rel, node.lineno) for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        here = mod.split(".") if is_pkg else mod.split(".")[:-1]
                        up = here[: len(here) - (node.level - 1)]
                        base = ".".join([*up, base] if base else up)
                    out.append(Edge(mod, base, rel, node.lineno))
                    out += [Edge(mod, f"{base}.{a.name}", rel, node.lineno) for a in node.names]
    return out


EDGES = _edges()


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _broken(importer: tuple[str, ...], imported: tuple[str, ...],
            allowed: tuple[str, ...] = ()) -> list[str]:  # fmt: skip
    return sorted({f"{e.path}:{e.line}: {e.module} imports {e.target}" for e in EDGES
                   if _under(e.module, *importer) and not _under(e.module, *allowed)
                   and _under(e.target, *imported)})  # fmt: skip


#: the command-line layer: it may use the library; the library never uses it
CLI = ("edgesnn.commands", "edgesnn.cli", "edgesnn.__main__")
#: offline tools inside the package that read recordings with the drivers' readers
OFFLINE = (*CLI, "edgesnn.benchmarks", "edgesnn.train")


def test_the_parse_sees_the_package() -> None:
    mods = {e.module for e in EDGES}
    assert {"edgesnn.deploy.report", "edgesnn.encoders.network", "edgesnn_drivers.audio.wav",
            "edgesnn.commands.run"} <= mods  # fmt: skip
    # the checker itself: a relative import resolves to its absolute module
    assert any(e.module == "edgesnn_drivers.dvs.udp" and e.target == "edgesnn_drivers.dvs._kernels"
               for e in EDGES)  # fmt: skip


def test_no_library_module_imports_the_commands() -> None:
    assert _broken(("edgesnn",), ("edgesnn.commands",), allowed=CLI) == []


def test_the_runtime_does_not_import_drivers() -> None:
    """Components reach drivers through the registry (edgesnn.components.discover), never by
    import: encoders, networks, readouts, sinks, the core, the daemon, deploy and config."""
    assert _broken(("edgesnn",), ("edgesnn_drivers",), allowed=OFFLINE) == []


def test_drivers_do_not_import_encoders() -> None:
    """Drivers make event batches; what turns batches into spikes is never their business
    (bench cases name an encoder type, edgesnn.benchmarks.io builds it)."""
    assert _broken(("edgesnn_drivers",), ("edgesnn.encoders",)) == []


def test_the_runtime_does_not_import_the_benchmarks() -> None:
    runtime = ("edgesnn.runtime", "edgesnn.encoders", "edgesnn.readouts", "edgesnn.sinks",
               "edgesnn.networks", "edgesnn.core", "edgesnn.config")  # fmt: skip
    assert _broken(runtime, ("edgesnn.benchmarks",)) == []


def test_chip_targets_do_not_import_each_other() -> None:
    """A new chip is a new folder: no target package reaches into another one."""
    root = ROOTS["edgesnn"] / "deploy" / "targets"
    names = sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file())
    assert {"loihi", "spinnaker", "xylo"} <= set(names)
    for a in names:
        others = tuple(f"edgesnn.deploy.targets.{b}" for b in names if b != a)
        assert _broken((f"edgesnn.deploy.targets.{a}",), others) == []


def test_deploy_reaches_targets_only_through_the_registry() -> None:
    """The shared deploy modules never import a chip's package: they look its family up."""
    chips = tuple(f"edgesnn.deploy.targets.{p.name}"
                  for p in (ROOTS["edgesnn"] / "deploy" / "targets").iterdir()
                  if (p / "__init__.py").is_file())  # fmt: skip
    assert _broken(("edgesnn",), chips, allowed=("edgesnn.deploy.targets",)) == []


def test_the_core_does_not_import_learning() -> None:
    """Learning depends on the core, not the other way round: the rules plug into the core
    through its registry (edgesnn.core.plasticity loads them by name)."""
    assert _broken(("edgesnn.core",), ("edgesnn.learning",)) == []
