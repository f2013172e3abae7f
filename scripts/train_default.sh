#!/usr/bin/env bash
# Trains (or resumes) the default model's recipe. The resumable state lives in
# training/default/last.pt, committed between sessions so no hours are lost when the
# machine changes; run this again to continue where it stopped.
#   usage: scripts/train_default.sh [extra lapx-train arguments; later flags win]
# LAPX_RUN_DIR trains into another directory with the same recipe (scripts/lever.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${LAPX_DATA:-../shared/data}
OUT=${LAPX_RUN_DIR:-training/default}
resume=()
[ -f "$OUT/last.pt" ] && resume=(--resume)
exec .venv/bin/python -m lapx_ros.train \
  --lsp-images "$DATA/lspet/images" --lsp-joints "$DATA/lspet/joints.mat" \
  --train-range 1-9000 --val-range 9001-9500 --out "$OUT" \
  --input-size 128 --stages 3 --epochs 30 --batch-size 32 --lr 1e-3 --warmup-epochs 0.5 \
  --schedule cosine --min-lr-ratio 0.05 --sigma 1.5 --whole-image-prob 0.2 \
  --nonlocal-freeze-epochs 2 --nonlocal-ramp-epochs 3 --nonlocal-gamma 0.2 \
  --bf16 --checkpoint-minutes 10 --threads 2 --seed 0 "${resume[@]}" "$@"
