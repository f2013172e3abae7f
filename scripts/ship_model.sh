#!/usr/bin/env bash
# Ships a training checkpoint as a preset's model: exports it to models/ (verified against
# PyTorch), scores the exported file through the node's default engine on the LSPET
# validation split (whole image, the node's search) and on the COCO sliver's val2017
# people (labelled boxes, the node's boxes path), and writes the figures the model card
# and test/test_shipped_model.py read.
#   usage: scripts/ship_model.sh [PRESET [CHECKPOINT [lapx-export flags]]]
#   PRESET: default (models/lapx_mpii16.onnx) or accurate (models/lapx_mpii16_accurate.onnx,
#   e.g. with --average-with OTHER.pt --mirror). CHECKPOINT defaults to the final state of
#   the last stage scripts/train_default.sh ran, its last.pt: the end of the recipe, not
#   the epoch that happened to score highest on the validation split.
#   SHIP_EXPORT=0 keeps the preset's file as it is and only scores it again (after a change
#   to the search or the engine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${LAPX_DATA:-../shared/data}
RUN=training/default
STAGES=("$RUN" "$RUN/stage2" "$RUN/stage3")  # scripts/train_default.sh's stages, in order
DEFAULT=$RUN/last.pt
for dir in "${STAGES[@]}"; do
  [ -f "$dir/last.pt" ] && DEFAULT=$dir/last.pt
done
PRESET=${1:-default}
CKPT=${2:-$DEFAULT}
EXPORT_FLAGS=("${@:3}")
PY=.venv/bin/python
# the preset's file name, from the table the node reads (lapx_ros.runtime.engine.MODEL_PRESETS)
NAME=$($PY -c "import sys; from lapx_ros.runtime.engine import MODEL_PRESETS as P; \
print(P[sys.argv[1]].removesuffix('.onnx')) if sys.argv[1] in P else sys.exit(f'preset must be one of {list(P)}, got {sys.argv[1]!r}')" "$PRESET") || exit 2
LSP=(--lsp-images "$DATA/lspet/images" --lsp-joints "$DATA/lspet/joints.mat")
COCO=(--coco-annotations "$DATA/coco-mini/person_keypoints_val2017.json" --coco-images "$DATA/coco-mini/val2017")
SUFFIX=$([ "$PRESET" = default ] || echo "_$PRESET")

if [ "${SHIP_EXPORT:-1}" != 0 ]; then
  $PY -m lapx_ros.export "$CKPT" "models/$NAME.onnx" "${LSP[@]}" "${EXPORT_FLAGS[@]}"
fi
# The node's default path (backend auto, precision auto): figures, per-joint table, pictures.
VIS=() VIS_COCO=()
if [ "$PRESET" = default ]; then
  VIS=(--vis docs/model/samples --vis-count 12)
  VIS_COCO=(--vis docs/model/samples_coco --vis-count 8)
fi
$PY -m lapx_ros.eval --model "models/$NAME.onnx" "${LSP[@]}" --range 9001-9500 \
  --json-out "models/$NAME.eval.json" "${VIS[@]}" > "docs/model/per_joint$SUFFIX.txt"
$PY -m lapx_ros.eval --model "models/$NAME.onnx" "${COCO[@]}" --json-out "models/$NAME.eval_coco.json" \
  "${VIS_COCO[@]}" > "docs/model/per_joint_coco$SUFFIX.txt"
# The fixed sample whose figure test/test_shipped_model.py holds the model to.
$PY -m lapx_ros.eval --model "models/$NAME.onnx" "${LSP[@]}" --range 9001-9100 --json \
  > "models/$NAME.eval_sample.json"
if [ "$PRESET" != default ]; then
  echo "shipped models/$NAME.onnx; figures in models/$NAME.eval*.json"
  exit 0
fi
$PY -m lapx_ros.eval --model "models/$NAME.onnx" "${LSP[@]}" --range 9001-9500 --json \
  --backend onnxruntime > "docs/model/eval_onnxruntime_fp32.json"
$PY -m lapx_ros.eval --model "$CKPT" "${LSP[@]}" --range 9001-9500 --json \
  > "docs/model/eval_pytorch.json"
# The learning curve of all stages, each stage's epochs numbered on from the one before.
$PY - "${STAGES[@]}" <<'PY'
import csv, sys
from pathlib import Path
from lapx_ros.train import write_curves
rows = []
for stage, log in enumerate((Path(d) / "log.csv" for d in sys.argv[1:]), 1):
    offset = rows[-1]["epoch"] if rows else 0
    for r in csv.DictReader(log.open()) if log.exists() else ():
        rows.append({"stage": stage, **{k: float(v) for k, v in r.items()}, "epoch": int(r["epoch"]) + offset})
with open("docs/model/log.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
write_curves(rows, Path("docs/model/curves.png"))
PY
echo "shipped models/$NAME.onnx; figures in models/$NAME.eval.json and docs/model/"
