"""Maps the top-level folders into the installed layout.

`drivers/` installs as the package `edgesnn_drivers`; `pipelines/` and `firmware_profiles/`
ship inside the wheel as `edgesnn/_shipped/...` so `edgesnn run demo` works from a wheel.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
core = find_packages(include=["edgesnn", "edgesnn.*"])
drivers = ["edgesnn_drivers"] + [
    "edgesnn_drivers." + p for p in find_packages(where="drivers")
]
shipped = {
    f"edgesnn._shipped.{d}": d
    for d in ("pipelines", "firmware_profiles")
    if (HERE / d).is_dir()
}
setup(
    packages=core + drivers + list(shipped),
    package_dir={"edgesnn_drivers": "drivers", **shipped},
    package_data={**{k: ["*.toml", "*.npz"] for k in shipped}, "edgesnn": ["py.typed"]},
)
