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
package_dir = {
    "edgesnn_drivers": "drivers",
    "edgesnn._shipped.pipelines": "pipelines",
    "edgesnn._shipped.firmware_profiles": "firmware_profiles",
}
setup(
    packages=core + drivers + ["edgesnn._shipped.pipelines", "edgesnn._shipped.firmware_profiles"],
    package_dir=package_dir,
    package_data={
        "edgesnn._shipped.pipelines": ["*.toml"],
        "edgesnn._shipped.firmware_profiles": ["*.toml"],
        "edgesnn": ["py.typed"],
    },
)
