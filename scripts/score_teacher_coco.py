"""Scores MediaPipe's landmarks of COCO person crops (scripts/teacher_labels.py coco) with
the metric lapx-eval gives an MPII-16 model on COCO: OKS-PCK@0.5 of the 12 limb joints on
people with at least 5 labelled keypoints, and keypoint AP on those joints. A person the
teacher missed counts as all joints wrong. Runs in the project's environment.

    usage: .venv/bin/python -m scripts.score_teacher_coco ANNOTATIONS.json TEACHER.npz
"""
from __future__ import annotations

import json
import sys

import numpy as np

from lapx_ros.data.coco import open_coco, person_annotations
from lapx_ros.evaluation import coco_limb_ap, coco_limb_people, keypoint_result, score_coco_limbs
from lapx_ros.layouts import BLAZEPOSE_33, COCO_17, convert_joints


def main(argv=None) -> int:
    annotations, teacher_file = (argv or sys.argv[1:])[:2]
    coco = open_coco(annotations)
    data = np.load(teacher_file)
    # x, y, visibility of BlazePose's landmarks, in COCO's joints
    k17 = convert_joints(data["landmarks"][..., [0, 1, 3]], BLAZEPOSE_33, COCO_17)
    found = dict(zip(data["annotation_id"].tolist(), data["found"].tolist()))
    by_id = {int(a): (k, f) for a, k, f in zip(data["annotation_id"], k17, data["found"])}
    scored = coco_limb_people(coco)
    pred = np.stack([by_id[a["id"]][0][:, :2] if found.get(a["id"]) else np.full((17, 2), np.nan) for a in scored])
    result = score_coco_limbs(coco, scored, pred)
    results = []
    for ann in person_annotations(coco):
        if found.get(ann["id"]):
            keypoints, _ = by_id[ann["id"]]
            results.append(keypoint_result(ann["image_id"], np.nan_to_num(keypoints[:, :2]),
                                           np.nan_to_num(keypoints[:, 2]), 1.0))
    result.update({f"limb_{k}": v for k, v in coco_limb_ap(coco, results).items()},
                  teacher=teacher_file, found=int(sum(found.values())))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
