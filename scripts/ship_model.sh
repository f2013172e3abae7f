#!/usr/bin/env bash
# Ships a training checkpoint as the default model: exports it to models/ (verified
# against PyTorch), scores the exported file on the LSPET validation split through the
# node's default engine, and writes the figures the model card and the tests read.
#   usage: scripts/ship_model.sh [CHECKPOINT]   (default: training/default/best.pt)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${LAPX_DATA:-../shared/data}
CKPT=${1:-training/default/best.pt}
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
cp training/default/curves.png training/default/log.csv docs/model/
echo "shipped models/$NAME.onnx; figures in models/$NAME.eval.json and docs/model/"
