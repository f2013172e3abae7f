"""Small steps of scripts/setup.sh that are easier in Python.

    python setup_helpers.py hash PATH...         print a SHA-256 over the files' names and bytes
    python setup_helpers.py fix-ros-cmake PREFIX point the ROS wheels' CMake exports at
                                                 this interpreter's and numpy's headers
    python setup_helpers.py write-pth PREFIX     make AMENT_PREFIX_PATH include PREFIX at start-up

Run each with the virtual environment's interpreter (fix-ros-cmake, write-pth) or any
Python 3 (hash). Standard library only, plus numpy for fix-ros-cmake.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import sysconfig
from pathlib import Path

SKIP_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis"}


def _files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not (SKIP_DIRS & set(f.parts)) and f.suffix != ".pyc":
                    out.append(f)
    return out


def cmd_hash(paths: list[str]) -> None:
    h = hashlib.sha256()
    h.update(sys.version.split()[0].encode())  # the interpreter running set-up
    for f in _files(paths):
        h.update(str(f).encode() + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    print(h.hexdigest())


# The ROS wheels were built in another interpreter prefix; their exported CMake
# targets for the rosidl Python generator name its include folders. Any absolute
# path ending like these is replaced by this interpreter's own folder.
_PY_INCLUDE = re.compile(r'[^";]*/include/python3\.[0-9]+')
_NUMPY_INCLUDE = re.compile(r'[^";]*/site-packages/numpy/(?:_core|core)/include')


def cmd_fix_ros_cmake(prefix: str) -> None:
    import numpy

    py_inc = sysconfig.get_paths()["include"]
    np_inc = numpy.get_include()
    if not Path(py_inc, "Python.h").is_file():
        sys.exit(f"Python.h not found in {py_inc}: install the Python development headers")
    changed = 0
    exports = sorted(Path(prefix, "share").glob("*/cmake/*__rosidl_generator_pyExport.cmake"))
    for f in exports:
        text = f.read_text()
        new = _PY_INCLUDE.sub(lambda m: py_inc, text)
        new = _NUMPY_INCLUDE.sub(lambda m: np_inc, new)
        if new != text:
            f.write_text(new)
            changed += 1
    print(f"fix-ros-cmake: {len(exports)} export files, {changed} rewritten")


PTH_NAME = "lapx_ros_ament_prefix.pth"
# .pth lines starting with "import" are executed at interpreter start. Files run in
# name order, so this one runs before ros_wheels_bootstrapper.pth re-executes the
# interpreter, and the re-executed process inherits the variable. The venv goes last,
# like an underlay, so a sourced workspace on AMENT_PREFIX_PATH still takes precedence.
PTH_LINE = (
    "import os, sys; _p = os.environ.get('AMENT_PREFIX_PATH', ''); "
    "sys.prefix in _p.split(os.pathsep) or os.environ.__setitem__("
    "'AMENT_PREFIX_PATH', os.pathsep.join(x for x in (_p, sys.prefix) if x)); del _p\n"
)


def cmd_write_pth(prefix: str) -> None:
    site = Path(sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})["purelib"])
    target = site / PTH_NAME
    if not target.is_file() or target.read_text() != PTH_LINE:
        target.write_text(PTH_LINE)
        print(f"write-pth: wrote {target.name}")


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "hash":
        cmd_hash(args)
    elif cmd == "fix-ros-cmake" and len(args) == 1:
        cmd_fix_ros_cmake(args[0])
    elif cmd == "write-pth" and len(args) == 1:
        cmd_write_pth(args[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
