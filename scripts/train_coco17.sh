#!/usr/bin/env bash
# Issue 25's long run: the paper's LAPX (3 stages, 2.29 M parameters) in COCO's 17 joints,
# distilled from MoveNet Thunder's labels of every training set (training/recipes/coco17.json:
# LSPET 1-9000, people/fashion, people/street, people/scenes, the COCO sliver's train2017,
# the exercise footage; human labels beside the teacher where they exist), one network for
# several input sizes (each batch at 144x192, 120x160 or 96x128, so the presets' sizes are
# chosen afterwards by measurement on the same weights).
# It starts from the default run's stage-3 weights at epoch 50 (MPII-16; the limb joints'
# heatmap weights carried over by name, the face joints from the head top's), the start a
# short run preferred over random initialisation (MODEL.md, round 3).
# Resumable: run it again after an interruption and it continues from $OUT/last.pt
# (rewritten every 20 minutes and at each epoch end). C17_OUT, C17_EPOCHS and C17_LR change
# a fresh run only: a resumed run must be given the values it started with.
#   usage: scripts/train_coco17.sh [extra lapx-train arguments; later flags win]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${C17_OUT:-training/c17}
START=${C17_START:-runs/start_e50.pt}
if [ "$START" = runs/start_e50.pt ] && [ ! -f "$START" ]; then
  mkdir -p "$(dirname "$START")"
  git show c698321:training/default/stage3/last.pt > "$START"
fi
RECIPE=(--recipe training/recipes/coco17.json
  --input-size 144x192 --extra-input-sizes 120x160,96x128
  --stages 3 --batch-size 32 --schedule cosine --lr "${C17_LR:-2e-4}" --warmup-epochs 0.5 --min-lr-ratio 0.05
  --epochs "${C17_EPOCHS:-24}" --sigma 1.5 --whole-image-prob 0.15 --neighbours 0.3 --teacher-weight 1.0
  --checkpoint-minutes 20 --threads 2 --seed 8)
resume=(--init-weights "$START")
# bfloat16 autocast where the CPU computes in it (AVX-512 BF16 / AMX); emulated elsewhere,
# where it is slower than fp32.
BF16=(); grep -q avx512_bf16 /proc/cpuinfo && BF16=(--bf16)
[ -f "$OUT/last.pt" ] && resume=(--resume)
exec nice -n 19 .venv/bin/python -m lapx_ros.train "${RECIPE[@]}" --out "$OUT" "${resume[@]}" "${BF16[@]}" "$@"
