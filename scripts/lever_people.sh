#!/usr/bin/env bash
# Ranks one lever of issue 18 cheaply: fine-tunes the same starting weights (the default
# run's stage-3 epoch-11 state, see MODEL.md) for a fixed number of batches with the
# fine-tuning recipe below plus the lever's flags, then scores the result on the LSPET
# validation split (whole image, the node's three-call search) and on the COCO sliver's
# val2017 people (labelled boxes, OKS-PCK@0.5 on the 12 limb joints).
# Results: runs/levers_r2/NAME/{lsp,coco}.json
#   usage: scripts/lever_people.sh NAME [lapx-train flags that make the lever]
#   e.g.   scripts/lever_people.sh input96x128 --input-size 96x128
# PEOPLE=1 adds the everyday-people data (footage teacher labels, COCO train2017 people
# with their teacher). LEVER_START (default runs/r2/start_e50.pt: `git show
# c698321:training/default/stage3/last.pt`), LEVER_BATCHES (150), LEVER_THREADS (1) and
# LEVER_RANGE (LSPET images scored, 9001-9500) size the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NAME=$1; shift
DATA=${LAPX_DATA:-../shared/data}
OUT=runs/levers_r2/$NAME
START=${LEVER_START:-runs/r2/start_e50.pt}
THREADS=${LEVER_THREADS:-1}
[ -f "$START" ] || { echo "no starting weights at $START" >&2; exit 1; }
[ ! -e "$OUT/last.pt" ] || { echo "$OUT already ran: remove it to run the lever again" >&2; exit 1; }
PEOPLE_FLAGS=()
if [ -n "${PEOPLE:-}" ]; then
  PEOPLE_FLAGS=(--footage-labels training/teacher/footage_exercise_heavy.npz --footage-images "$DATA/footage/exercise"
    --coco-mpii-annotations "$DATA/coco-mini/person_keypoints_train2017.json" --coco-mpii-images "$DATA/coco-mini/train2017"
    --coco-mpii-teacher training/teacher/coco_train2017_heavy.npz --coco-mpii-repeat 4)
fi
nice -n 19 .venv/bin/python -m lapx_ros.train --lsp-images "$DATA/lspet/images" --lsp-joints "$DATA/lspet/joints.mat" \
  --train-range 1-9000 --val-range 9001-9500 --init-weights "$START" --stages 3 --batch-size 32 \
  --lr 2e-4 --epochs 10 --warmup-epochs 0.05 --min-lr-ratio 0.05 --sigma 1.5 --whole-image-prob 0.2 \
  --teacher-landmarks "$DATA/lspet/mediapipe_heavy_landmarks.npz" --teacher-weight 0.5 \
  --threads "$THREADS" --seed 0 --max-batches "${LEVER_BATCHES:-150}" --out "$OUT" "${PEOPLE_FLAGS[@]}" "$@"
nice -n 19 .venv/bin/python -m lapx_ros.eval --model "$OUT/last.pt" --lsp-images "$DATA/lspet/images" \
  --lsp-joints "$DATA/lspet/joints.mat" --range "${LEVER_RANGE:-9001-9500}" --threads "$THREADS" --json > "$OUT/lsp.json"
nice -n 19 .venv/bin/python -m lapx_ros.eval --model "$OUT/last.pt" --threads "$THREADS" --json \
  --coco-annotations "$DATA/coco-mini/person_keypoints_val2017.json" --coco-images "$DATA/coco-mini/val2017" \
  > "$OUT/coco.json"
.venv/bin/python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
lsp, coco = (json.load(open(f"{out}/{n}.json")) for n in ("lsp", "coco"))
print(f"{out}: LSPET PCKh@0.5 {lsp['pckh']:.4f} PCK@0.2 {lsp['pck_torso']:.4f}; "
      f"COCO OKS-PCK@0.5 {coco['oks_pck']:.4f} limb AP {coco['limb_ap']:.4f}")
PY
