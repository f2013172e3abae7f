#!/usr/bin/env bash
# Ranks one training lever cheaply: fine-tunes the same starting weights with the default
# recipe plus the lever's flags for a fixed number of batches, then scores the result on
# the first 200 validation images, two-pass (the dashboard metric) and on the labelled
# boxes (the ceiling of the crop pass). Results: runs/levers/NAME/{twopass,labelboxes}.json
#   usage: scripts/lever.sh NAME [lapx-train flags that make the lever]
#   e.g.   scripts/lever.sh sigma2 --sigma 2.0
# LEVER_START (default runs/levers/start.pt) holds the starting weights; LEVER_BATCHES
# (default 120) and LEVER_THREADS (default 1) size the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NAME=$1; shift
DATA=${LAPX_DATA:-../shared/data}
OUT=runs/levers/$NAME
START=${LEVER_START:-runs/levers/start.pt}
THREADS=${LEVER_THREADS:-1}
[ -f "$START" ] || { echo "no starting weights at $START" >&2; exit 1; }
# train_default.sh would resume an existing run: a lever must start from START every time
[ ! -e "$OUT/last.pt" ] || { echo "$OUT already ran: remove it to run the lever again" >&2; exit 1; }
LAPX_RUN_DIR=$OUT scripts/train_default.sh --init-weights "$START" --warmup-epochs 0.05 \
  --max-batches "${LEVER_BATCHES:-120}" --threads "$THREADS" "$@"
LSP=(--lsp-images "$DATA/lspet/images" --lsp-joints "$DATA/lspet/joints.mat" --range 9001-9200)
.venv/bin/python -m lapx_ros.eval --model "$OUT/last.pt" "${LSP[@]}" --threads "$THREADS" --json \
  > "$OUT/twopass.json"
.venv/bin/python -m lapx_ros.eval --model "$OUT/last.pt" "${LSP[@]}" --threads "$THREADS" --json \
  --label-boxes > "$OUT/labelboxes.json"
.venv/bin/python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
two, box = (json.load(open(f"{out}/{n}.json")) for n in ("twopass", "labelboxes"))
print(f"{out}: PCKh two-pass {two['pckh']:.4f}, labelled boxes {box['pckh']:.4f}, "
      f"PCK torso two-pass {two['pck_torso']:.4f}")
PY
