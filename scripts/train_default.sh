#!/usr/bin/env bash
# Trains (or resumes) the default model's recipe in three stages:
#   1. training/default:        30 epochs from scratch, one cosine cycle from lr 1e-3;
#   2. training/default/stage2: a second, shorter cosine cycle from stage 1's final weights
#      at a lower peak, with MediaPipe heavy's landmarks as a second target (distillation);
#   3. training/default/stage3: a third cycle like stage 2's from stage 2's final weights,
#      with another seed so it sees other crops in another order.
# Each stage resumes from its own last.pt and is skipped once a later stage has started,
# so running this again continues where it stopped. (While the shipped model trained, the
# latest stage's last.pt was committed between sessions; it was removed once the model
# shipped, and a fresh checkout trains all three stages, about 12 hours on 2 cores.)
#   usage: scripts/train_default.sh [extra lapx-train arguments; later flags win]
# LAPX_RUN_DIR trains one stage-1 run into another directory with the same recipe
# and the extra arguments (scripts/lever.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${LAPX_DATA:-../shared/data}
RECIPE=(--lsp-images "$DATA/lspet/images" --lsp-joints "$DATA/lspet/joints.mat"
  --train-range 1-9000 --val-range 9001-9500
  --input-size 128 --stages 3 --batch-size 32 --schedule cosine --min-lr-ratio 0.05
  --sigma 1.5 --whole-image-prob 0.2 --nonlocal-gamma 0.2
  --bf16 --checkpoint-minutes 10 --threads 2 --seed 0)
STAGE1=(--epochs 30 --lr 1e-3 --warmup-epochs 0.5 --nonlocal-freeze-epochs 2 --nonlocal-ramp-epochs 3)
STAGE2=(--epochs 9 --lr 3e-4 --warmup-epochs 0.2
  --teacher-landmarks "$DATA/lspet/mediapipe_heavy_landmarks.npz" --teacher-weight 0.5)
STAGE3=(--epochs 16 --lr 3e-4 --warmup-epochs 0.2 --seed 3
  --teacher-landmarks "$DATA/lspet/mediapipe_heavy_landmarks.npz" --teacher-weight 0.5)

train() {  # train DIR FLAGS...: one run, resumed when DIR holds its last.pt
  local dir=$1; shift
  local resume=()
  [ -f "$dir/last.pt" ] && resume=(--resume)
  .venv/bin/python -m lapx_ros.train "${RECIPE[@]}" --out "$dir" "$@" "${resume[@]}"
}

if [ -n "${LAPX_RUN_DIR:-}" ]; then
  train "$LAPX_RUN_DIR" "${STAGE1[@]}" "$@"
  exit
fi
OUT=training/default
if [ ! -f "$OUT/stage2/last.pt" ] && [ ! -f "$OUT/stage3/last.pt" ]; then
  train "$OUT" "${STAGE1[@]}" "$@"
fi
if [ ! -f "$OUT/stage3/last.pt" ]; then
  train "$OUT/stage2" --init-weights "$OUT/last.pt" "${STAGE2[@]}" "$@"
fi
train "$OUT/stage3" --init-weights "$OUT/stage2/last.pt" "${STAGE3[@]}" "$@"
