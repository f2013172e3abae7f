"""package.xml is a valid format-3 manifest and declares what the code imports.

Every third-party module imported in lapx_ros/, launch/, examples/ and test/ must map
to a rosdep key (IMPORT_TO_ROSDEP below) that package.xml declares, and to a pip
requirement in requirements.txt (the .venv set-up). Modules reachable from the node
(lapx_ros/ros, lapx_ros/runtime, following imports inside lapx_ros) and launch files
must be run-time dependencies (<depend> or <exec_depend>); the rest (training tools,
tests) may be <test_depend>.

A new third-party import therefore needs three lines: its key here, its dependency in
package.xml, its requirement in requirements.txt.
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "lapx_ros"

# import name -> rosdep key. Keys ending in -pip are installed by rosdep with pip;
# those missing from the public rosdep database are defined in rosdep.yaml.
IMPORT_TO_ROSDEP = {
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "scipy": "python3-scipy",
    "onnxruntime": "python3-onnxruntime-pip",
    "openvino": "python3-openvino-pip",
    "torch": "python3-torch",
    "onnx": "python3-onnx-pip",
    "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib",
    "pycocotools": "python3-pycocotools-pip",
    "yaml": "python3-yaml",
    "PIL": "python3-pil",
    "pytest": "python3-pytest",
    "hypothesis": "python3-hypothesis",
    "rosbags": "python3-rosbags-pip",
    "rosbags_image": "python3-rosbags-image-pip",
    "rclpy": "rclpy",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "ament_index_python": "ament_index_python",
    "cv_bridge": "cv_bridge",
    "message_filters": "message_filters",
    "tf2_ros": "tf2_ros",
    "image_geometry": "image_geometry",
    "rosidl_runtime_py": "rosidl_runtime_py",
}
# ROS interface packages (std_msgs, lifecycle_msgs, rcl_interfaces, ...) are their own key.
INTERFACE_PACKAGE = re.compile(r"^[a-z][a-z0-9_]*_(msgs|interfaces)$")

# import name -> pip requirement (requirements.txt). None: no wheel exists; such a
# module may only be imported lazily (inside a function or a try block) so the code
# still loads without it, except in launch files, which the set-up never runs.
IMPORT_TO_PIP = {
    "numpy": "numpy",
    "cv2": "opencv-python-headless",
    "scipy": "scipy",
    "onnxruntime": "onnxruntime",
    "openvino": "openvino",
    "torch": "torch",
    "onnx": "onnx",
    "tqdm": "tqdm",
    "matplotlib": "matplotlib",
    "pycocotools": "pycocotools",
    "yaml": "pyyaml",
    "PIL": "pillow",
    "pytest": "pytest",
    "hypothesis": "hypothesis",
    "rosbags": "rosbags",
    "rosbags_image": "rosbags-image",
    "launch": None,
    "launch_ros": None,
    "vision_msgs": None,
    "cv_bridge": None,
    "message_filters": None,
    "tf2_ros": None,
    "image_geometry": None,
    "rosidl_runtime_py": None,
}

RUNTIME_ROOTS = ("lapx_ros/ros", "lapx_ros/runtime", "launch")
SCANNED = ("lapx_ros", "launch", "examples", "test")
EXEC_TAGS = {"exec_depend"}  # <depend> implies it
ANY_TAGS = EXEC_TAGS | {"test_depend"}


def rosdep_key(module: str) -> str | None:
    if module in IMPORT_TO_ROSDEP:
        return IMPORT_TO_ROSDEP[module]
    if INTERFACE_PACKAGE.match(module):
        return module
    return None


def pip_name(module: str) -> str | None:
    if module in IMPORT_TO_PIP:
        return IMPORT_TO_PIP[module]
    if module == "rclpy" or module == "ament_index_python" or INTERFACE_PACKAGE.match(module):
        return "ros-jazzy-" + module.replace("_", "-")
    return "?"


# --- package.xml ------------------------------------------------------------------------
def parse_manifest():
    catkin_pkg = pytest.importorskip("catkin_pkg.package")
    return catkin_pkg.parse_package(str(REPO / "package.xml"))


def declared() -> dict[str, set[str]]:
    """rosdep key -> the dependency kinds declaring it (<depend> counts as build + exec)."""
    pkg = parse_manifest()
    kinds = {
        "buildtool_depend": pkg.buildtool_depends,
        "build_depend": pkg.build_depends,
        "exec_depend": pkg.exec_depends,
        "test_depend": pkg.test_depends,
    }
    out: dict[str, set[str]] = {}
    for kind, deps in kinds.items():
        for d in deps:
            out.setdefault(d.name, set()).add(kind)
    return out


def test_manifest_parses_as_format_3():
    pkg = parse_manifest()
    pkg.validate()
    assert pkg.package_format == 3
    assert pkg.name == PACKAGE
    assert pkg.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [g.name for g in pkg.member_of_groups]
    setup_py = (REPO / "setup.py").read_text()
    assert f'version="{pkg.version}"' in setup_py, "setup.py and package.xml versions differ"


def test_message_build_dependencies():
    deps = declared()
    for key in ("ament_cmake", "rosidl_default_generators"):
        assert "buildtool_depend" in deps.get(key, set()), key
    assert "exec_depend" in deps.get("rosidl_default_runtime", set())
    # every package a .msg field refers to: needed to build and to use the messages
    used = set()
    for f in (REPO / "msg").glob("*.msg"):
        for line in f.read_text().splitlines():
            m = re.match(r"^\s*([a-z][a-z0-9_]*)/[A-Z]\w*(\[\])?\s+\w+", line)
            if m:
                used.add(m.group(1))
    assert used, "no msg field refers to another package?"
    for pkg in used:
        assert {"build_depend", "exec_depend"} <= deps.get(pkg, set()), f"{pkg}: use <depend>"
    cmake = (REPO / "CMakeLists.txt").read_text()
    for f in (REPO / "msg").glob("*.msg"):
        assert f'"msg/{f.name}"' in cmake, f"{f.name} missing from rosidl_generate_interfaces"


# --- imports in the code ----------------------------------------------------------------
@dataclass(frozen=True)
class Import:
    module: str  # top-level name, e.g. "numpy"
    full: str  # dotted name as resolved, e.g. "lapx_ros.runtime.engine"
    file: Path
    line: int
    guarded: bool = False  # inside a function or a try block: the file loads without it


def _local_names(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if p.is_dir()}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> list[Import]:
    """Absolute dotted names imported by a file (relative imports resolved)."""
    rel = path.relative_to(REPO).with_suffix("")
    package_parts = list(rel.parts[:-1])  # the package a relative import starts from
    tree = ast.parse(path.read_text(), filename=str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Try)):
            guarded |= {id(n) for n in ast.walk(node)} - {id(node)}
    out: list[Import] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        g = id(node) in guarded
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append(Import(a.name.split(".")[0], a.name, path, node.lineno, g))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                full = f"{mod}.{a.name}" if a.name != "*" else mod
                out.append(Import(mod.split(".")[0], full, path, node.lineno, g))
    return out


def python_files(top: str) -> list[Path]:
    root = REPO / top
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def third_party(imp: Import) -> bool:
    if imp.module in ("", PACKAGE, "__future__") or imp.module in sys.stdlib_module_names:
        return False
    # helper modules of the tests and examples (pytest.ini puts both folders on sys.path)
    local = _local_names(imp.file.parent)
    for folder in ("test", "examples"):
        if (REPO / folder).is_dir():
            local |= _local_names(REPO / folder)
    return imp.module not in local


def module_file(dotted: str) -> Path | None:
    """lapx_ros.x.y -> its file in the source tree, if it is one of ours."""
    parts = dotted.split(".")
    while parts and parts[0] == PACKAGE:
        base = REPO.joinpath(*parts)
        for cand in (base.with_suffix(".py"), base / "__init__.py"):
            if cand.is_file():
                return cand
        parts = parts[:-1]  # `from lapx_ros.x import name`: name is not a module
    return None


def runtime_files() -> set[Path]:
    """Files the node and launch files load: the roots and what they import from lapx_ros."""
    todo = [f for top in RUNTIME_ROOTS for f in python_files(top)]
    seen: set[Path] = set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        # importing a submodule runs every parent package's __init__.py
        for parent in f.relative_to(REPO).parents:
            init = REPO / parent / "__init__.py"
            if parent.parts and init.is_file() and init not in seen:
                todo.append(init)
        for imp in imports_of(f):
            if imp.module == PACKAGE:
                target = module_file(imp.full)
                if target and target not in seen:
                    todo.append(target)
    return seen


def all_third_party_imports() -> list[Import]:
    return [i for top in SCANNED for f in python_files(top) for i in imports_of(f) if third_party(i)]


def _where(imps: list[Import]) -> str:
    return ", ".join(sorted({f"{i.file.relative_to(REPO)}:{i.line}" for i in imps}))


def test_every_import_has_a_known_rosdep_key():
    unknown: dict[str, list[Import]] = {}
    for imp in all_third_party_imports():
        if rosdep_key(imp.module) is None:
            unknown.setdefault(imp.module, []).append(imp)
    assert not unknown, "imports with no rosdep key in IMPORT_TO_ROSDEP:\n" + "\n".join(
        f"  {m} ({_where(v)})" for m, v in sorted(unknown.items())
    )


def test_imported_modules_are_declared_in_package_xml():
    deps = declared()
    runtime = runtime_files()
    problems = []
    by_module: dict[str, list[Import]] = {}
    for imp in all_third_party_imports():
        by_module.setdefault(imp.module, []).append(imp)
    for module, imps in sorted(by_module.items()):
        key = rosdep_key(module)
        if key is None:
            continue  # reported by the test above
        tags = deps.get(key, set())
        at_runtime = [i for i in imps if i.file in runtime]
        if at_runtime and not tags & EXEC_TAGS:
            problems.append(
                f"  {module}: imported by the node or a launch file ({_where(at_runtime)}); "
                f"declare <exec_depend>{key}</exec_depend>"
                + (f" (now only {sorted(tags)})" if tags else "")
            )
        elif not tags & ANY_TAGS:
            problems.append(
                f"  {module}: imported ({_where(imps)}); declare {key} "
                "(<exec_depend> for the node's own needs, <test_depend> for tools and tests)"
            )
    assert not problems, "package.xml misses dependencies:\n" + "\n".join(problems)


def _requirement_names() -> set[str]:
    names = set()
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0].lower())
    return names


def test_imported_modules_are_in_requirements_txt():
    reqs = _requirement_names()
    missing: dict[str, list[Import]] = {}
    for imp in all_third_party_imports():
        name = pip_name(imp.module)
        if name is None:
            if not imp.guarded and not imp.file.is_relative_to(REPO / "launch"):
                missing.setdefault(
                    f"{imp.module} (no wheel: import it inside a function or try block)", []
                ).append(imp)
            continue
        if name == "?":
            continue  # no rosdep key either: reported by test_every_import_has_a_known_rosdep_key
        if name not in reqs:
            missing.setdefault(f"{imp.module} -> {name}", []).append(imp)
    assert not missing, "requirements.txt misses:\n" + "\n".join(
        f"  {m} ({_where(v)})" for m, v in sorted(missing.items())
    )


def test_the_import_scanner_sees_relative_and_lazy_imports(tmp_path, monkeypatch):
    """Guard the checker itself: relative imports resolve, lazy imports count."""
    pkg = tmp_path / PACKAGE / "runtime"
    pkg.mkdir(parents=True)
    (pkg / "engine.py").write_text(
        "from . import tracking\nfrom ..layouts import MPII_16\n"
        "def load():\n    import onnxruntime\n    return onnxruntime\n"
        "if TYPE_CHECKING:\n    import torch\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    found = {(i.module, i.full) for i in imports_of(pkg / "engine.py")}
    assert ("lapx_ros", "lapx_ros.runtime.tracking") in found
    assert ("lapx_ros", "lapx_ros.layouts.MPII_16") in found
    assert ("onnxruntime", "onnxruntime") in found
    assert not any(m == "torch" for m, _ in found)
    lazy = {i.module: i.guarded for i in imports_of(pkg / "engine.py")}
    assert lazy == {"lapx_ros": False, "onnxruntime": True}
