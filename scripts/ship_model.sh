#!/usr/bin/env bash
# Ships a training checkpoint as the default model: exports it to models/ (verified
# against PyTorch), scores the exported file on the LSPET validation split through the
# node's default engine, and writes the figures the model card and the tests read.
#   usage: scripts/ship_model.sh [CHECKPOINT]
#   (default: the final state of the last stage scripts/train_default.sh ran, its
#   last.pt: the end of the recipe, not the epoch that happened to score highest on the
#   validation split, so the figures written are not inflated by choosing among noisy
#   epochs; pass a best.pt to ship that instead)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${LAPX_DATA:-../shared/data}
RUN=training/default
STAGES=("$RUN" "$RUN/stage2" "$RUN/stage3")  # scripts/train_default.sh's stages, in order
DEFAULT=$RUN/last.pt
for dir in "${STAGES[@]}"; do
  [ -f "$dir/last.pt" ] && DEFAULT=$dir/last.pt
done
CKPT=${1:-$DEFAULT}
NAME=lapx_mpii16
LSP=(--lsp-images "$DATA/lspet/images" --lsp-joints "$DATA/lspet/joints.mat")
PY=.venv/bin/python

$PY -m lapx_ros.export "$CKPT" "models/$NAME.onnx" "${LSP[@]}"
# The node's default path (backend auto, precision auto): figures, per-joint table, pictures.
$PY -m lapx_ros.eval --model "models/$NAME.onnx" "${LSP[@]}" --range 9001-9500 \
  --json-out "models/$NAME.eval.json" --vis docs/model/samples --vis-count 12 > docs/model/per_joint.txt
# The fixed sample whose figure test/test_shipped_model.py holds the model to.
$PY -m lapx_ros.eval --model "models/$NAME.onnx" "${LSP[@]}" --range 9001-9100 --json \
  > "models/$NAME.eval_sample.json"
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
