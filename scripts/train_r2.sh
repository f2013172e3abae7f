#!/usr/bin/env bash
# Issue 18's long run (round 2): fine-tunes the default model's weights on LSPET plus the
# everyday-people data (MediaPipe heavy labels of the footage's training clips, COCO
# train2017 people with their human labels and the teacher's) with the neighbours
# augmentation, at the square 128x128 input (the 3:4 96x128 input lost 0.043 LSPET PCKh and
# 0.011 COCO OKS-PCK against the control in the short runs; MODEL.md, round 2).
# R2_INPUT, R2_NEIGHBOURS, R2_EPOCHS, R2_LR and R2_START (starting weights) change the
# recipe of a fresh run only: a resumed run must be given the values it started with. The
# 192x192 lever (training/r4, MODEL.md round 2) ran as
#   R2_OUT=training/r4 R2_INPUT=192 R2_EPOCHS=2 R2_LR=1e-4 R2_START=<r3's last.pt> scripts/train_r2.sh
# and the stride-2 heatmap head (training/r6; sigma 3.0 at stride 2 is r3's 1.5 at stride 4) as
#   R2_OUT=training/r6 R2_EPOCHS=4 R2_START=<r3's last.pt> scripts/train_r2.sh \
#     --heatmap-stride 2 --sigma 3.0 --fine-head-lr-scale 10
# The recipe's first run (peak lr 3e-4 over 24 epochs, training/r2) fell from 0.606 to 0.553
# LSPET PCKh and 0.490 to 0.444 COCO OKS-PCK in its first two epochs (the restart shock of a
# fresh Adam at a high rate) and would have needed about 30 hours: it was cut there. This
# one fine-tunes at a rate near the one the weights ended at (peak 5e-5, cosine to 10% over
# 6 epochs; its first two ran on an 8-epoch schedule, so at the switch the rate stepped from
# 0.87 to 0.78 of the peak).
# Resumable: run it again after an interruption and it continues from training/r3/last.pt
# (rewritten every 20 minutes and at each epoch end: the one resumable state).
#   usage: scripts/train_r2.sh [extra lapx-train arguments; later flags win]
# The starting weights are the default run's stage-3 state at its epoch 11 (epoch 50 in
# all; PCKh@0.5 0.606 in PyTorch), taken from git history when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${LAPX_DATA:-../shared/data}
OUT=${R2_OUT:-training/r3}
START=${R2_START:-runs/r2/start_e50.pt}
if [ "$START" = runs/r2/start_e50.pt ] && [ ! -f "$START" ]; then
  mkdir -p "$(dirname "$START")"
  git show c698321:training/default/stage3/last.pt > "$START"
fi
RECIPE=(--lsp-images "$DATA/lspet/images" --lsp-joints "$DATA/lspet/joints.mat"
  --train-range 1-9000 --val-range 9001-9500
  --teacher-landmarks "$DATA/lspet/mediapipe_heavy_landmarks.npz" --teacher-weight 0.5
  --footage-labels training/teacher/footage_exercise_heavy.npz --footage-images "$DATA/footage/exercise"
  --coco-mpii-annotations "$DATA/coco-mini/person_keypoints_train2017.json"
  --coco-mpii-images "$DATA/coco-mini/train2017" --coco-mpii-teacher training/teacher/coco_train2017_heavy.npz
  --coco-mpii-repeat 4
  --coco-limbs-val-annotations "$DATA/coco-mini/person_keypoints_val2017.json"
  --coco-limbs-val-images "$DATA/coco-mini/val2017"
  --input-size "${R2_INPUT:-128}" --neighbours "${R2_NEIGHBOURS:-0.3}"
  --stages 3 --batch-size 32 --schedule cosine --lr "${R2_LR:-5e-5}" --warmup-epochs 0.1 --min-lr-ratio 0.1
  --epochs "${R2_EPOCHS:-6}" --sigma 1.5 --whole-image-prob 0.2
  --checkpoint-minutes 20 --threads 2 --seed 5)
resume=(--init-weights "$START")
# bfloat16 autocast where the CPU computes in it (AVX-512 BF16 / AMX: 2.1 s a batch against
# 2.9 in fp32 at 2 threads); emulated elsewhere, where it is slower than fp32.
BF16=(); grep -q avx512_bf16 /proc/cpuinfo && BF16=(--bf16)
[ -f "$OUT/last.pt" ] && resume=(--resume)
exec nice -n 19 .venv/bin/python -m lapx_ros.train "${RECIPE[@]}" --out "$OUT" "${resume[@]}" "${BF16[@]}" "$@"
