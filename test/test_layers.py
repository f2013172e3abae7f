"""Imports run one way (docs/architecture.md): core <- network, data, runtime <- ROS <- tools.
A module imports only its own layer and the layers it builds on, also inside functions."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lapx_ros"
CORE = {"layouts", "metadata", "geometry", "heatmaps", "topdown"}
# What each layer may import, beside itself.
BUILDS_ON = {
    "core": set(),
    "network": {"core"},
    "data": {"core"},
    "runtime": {"core"},
    "ros": {"core", "runtime", "msg"},
}


def layer(module: str) -> str:
    """The layer of a dotted module name inside lapx_ros ("tools" for the commands)."""
    part = module.split(".")[1] if "." in module else ""
    if part in CORE:
        return "core"
    return {"model": "network", "data": "data", "runtime": "runtime", "ros": "ros", "msg": "msg"}.get(part, "tools")


def imported(path: Path) -> set[str]:
    """The lapx_ros modules ``path`` imports (``from lapx_ros import x`` counts as lapx_ros.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lapx_ros.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lapx_ros"):
            found |= ({f"lapx_ros.{a.name}" for a in node.names} if node.module == "lapx_ros"
                      else {node.module})
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if layer("lapx_ros." + ".".join(
    p.relative_to(PACKAGE).with_suffix("").parts)) in BUILDS_ON)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    own = layer("lapx_ros." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    allowed = BUILDS_ON[own] | {own}
    wrong = sorted(m for m in imported(path) if layer(m) not in allowed)
    assert not wrong, f"{own} module imports {wrong}"


def test_the_layers_are_known():
    assert layer("lapx_ros.topdown") == "core" and layer("lapx_ros.runtime.detectors.hog") == "runtime"
    assert layer("lapx_ros.ros.node") == "ros" and layer("lapx_ros.train") == "tools"
    assert len(MODULES) > 40
