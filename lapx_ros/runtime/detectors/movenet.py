"""MoveNet MultiPose Lightning, Google's learned multi-person pose model, as a person
detector: up to 6 people per run, each with a box, a score and 17 COCO keypoints. Its file
is converted to ONNX at set-up (scripts/make_detector.sh) and runs on the package's
inference backend (OpenVINO or ONNX Runtime)."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from lapx_ros.geometry import letterbox, non_max_suppression
from lapx_ros.runtime.backend import BACKENDS, PRECISIONS, ModelError, Network, installed_file, load_network
from lapx_ros.runtime.detectors.base import DetectorModelError, Detections, DetectorSettings

MOVENET_FILE = "movenet-multipose-lightning.onnx"
# Input sides the node offers: MoveNet needs multiples of 32 (its stride); the model card
# recommends 256 for the longer side, 384 finds more of the small people (docs).
MOVENET_SIZES = (192, 256, 320, 384, 448, 512)
MOVENET_STRIDE = 32
MOVENET_JOINTS = 17  # COCO order: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles
MOVENET_ROW = 3 * MOVENET_JOINTS + 5  # per person: (y, x, score) x 17, then ymin, xmin, ymax, xmax, score
# Two MoveNet people overlapping more than this are one person found twice.
MOVENET_NMS_IOU = 0.5


def default_detector_path() -> str:
    """The MoveNet file that set-up installs (share/lapx_ros/detectors); "" when there is none."""
    return installed_file("detectors", MOVENET_FILE)


def movenet_input_shape(frame_shape, size: int, square: bool = True) -> tuple[int, int]:
    """(height, width) of the network input for a frame: ``size`` x ``size``, or with
    ``square`` False the frame scaled to ``size`` on its longer side and the other side
    padded up to a multiple of 32 (less padding, fewer operations)."""
    if square:
        return size, size
    h, w = frame_shape[:2]
    s = size / max(h, w)

    def up(v):
        return max(MOVENET_STRIDE, int(math.ceil(round(v * s) / MOVENET_STRIDE)) * MOVENET_STRIDE)

    return up(h), up(w)


def decode_movenet(rows: np.ndarray, input_hw, scale_xy, frame_hw, threshold: float,
                   nms_iou: float = MOVENET_NMS_IOU, box_scale: float = 1.0) -> Detections:
    """MoveNet's output rows (N, 56) -> people in frame pixels, best first.

    Each row holds 17 (y, x, score) keypoints and the box (ymin, xmin, ymax, xmax) with
    the person's score, coordinates normalised to the network input (input_hw). People
    scoring below ``threshold`` are dropped, then duplicates (IoU > ``nms_iou``). Boxes
    are grown by ``box_scale`` about their centre (context for a pose crop) and clipped to
    the frame; keypoints are not clipped.
    """
    rows = np.asarray(rows, np.float64).reshape(-1, MOVENET_ROW)
    rows = rows[np.isfinite(rows).all(axis=1)]
    rows = rows[rows[:, 55] >= threshold]
    in_h, in_w = input_hw
    sx, sy = scale_xy
    fh, fw = frame_hw
    to_px = np.array([in_w / sx, in_h / sy])  # normalised (x, y) -> frame pixels
    boxes = rows[:, [52, 51, 54, 53]] * np.tile(to_px, 2)  # x0, y0, x1, y1
    scores = rows[:, 55]
    keypoints = rows[:, :51].reshape(-1, MOVENET_JOINTS, 3)[:, :, [1, 0, 2]].copy()
    keypoints[:, :, :2] *= to_px
    keep = non_max_suppression(boxes, scores, nms_iou)
    if len(keep) == 0:
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, MOVENET_JOINTS, 3)))
    boxes, scores, keypoints = boxes[keep], scores[keep], keypoints[keep]
    if box_scale != 1.0:
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        half = (boxes[:, 2:] - boxes[:, :2]) / 2 * box_scale
        boxes = np.concatenate([centre - half, centre + half], axis=1)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, fw)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, fh)
    return Detections(boxes, scores, keypoints)


def _check_io(path: str, inputs: dict, outputs: dict, input_types: dict):
    """The one input (1, H, W, 3) int32 and one output (1, N, 56) MoveNet has; returns the
    input's fixed (H, W), or None when they are dynamic."""
    if len(inputs) != 1:
        raise DetectorModelError(path, f"has {len(inputs)} inputs {sorted(inputs)}, expected one "
                                       "image (1, H, W, 3) int32 as MoveNet MultiPose takes")
    (name, shape), = inputs.items()
    if len(shape) != 4 or shape[3] not in (None, 3) or shape[0] not in (None, 1):
        raise DetectorModelError(path, f"input {name!r} has shape {shape}, expected (1, H, W, 3) "
                                       "RGB as MoveNet MultiPose takes")
    if input_types[name] != "int32":
        raise DetectorModelError(path, f"input {name!r} is {input_types[name]}, expected int32 "
                                       "pixels as MoveNet MultiPose takes")
    if len(outputs) != 1:
        raise DetectorModelError(path, f"has {len(outputs)} outputs {sorted(outputs)}, expected one "
                                       f"(1, N, {MOVENET_ROW})")
    (out_name, out_shape), = outputs.items()
    if len(out_shape) != 3 or out_shape[2] not in (None, MOVENET_ROW):
        raise DetectorModelError(path, f"output {out_name!r} has shape {out_shape}, expected "
                                       f"(1, N, {MOVENET_ROW}): 17 keypoints and a box per person")
    h, w = shape[1], shape[2]
    if (h is None) != (w is None):
        raise DetectorModelError(path, f"input {name!r} has shape {shape}: H and W must both be "
                                       "fixed or both dynamic")
    if h is not None and (h % MOVENET_STRIDE or w % MOVENET_STRIDE):
        raise DetectorModelError(path, f"input {name!r} is {h}x{w}; MoveNet needs multiples of 32")
    return None if h is None else (h, w)


class MoveNetDetector:
    """People (boxes, scores, 17 keypoints) in a BGR frame from MoveNet MultiPose.

    The frame is letterboxed into the network input: ``input_size`` on its longer side,
    the shorter side padded to a multiple of 32 (``square``: padded to ``input_size``, as
    the model card shows it, at more work on a 4:3 frame); a file with a fixed input size
    uses that size. At most 6 people come out. The file is checked when loaded (inputs,
    outputs, one run on a black frame): a file that cannot serve raises
    DetectorModelError naming it and the problem.
    """

    label = "MoveNet"
    summary = "MoveNet MultiPose (learned; the file set-up installs, or detector_model)"

    def __init__(self, path: str, input_size: int = 384, score_threshold: float = 0.1,
                 backend: str = "auto", threads: int = 1, precision: str = "f32",
                 box_scale: float = 1.0, square: bool = False, log=None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if input_size % MOVENET_STRIDE or input_size <= 0:
            raise ValueError(f"input_size must be a positive multiple of {MOVENET_STRIDE}, got {input_size}")
        self.path = path
        self.input_size = input_size
        self.score_threshold = score_threshold
        self.box_scale = box_scale
        self.square = square
        self._fixed = None  # the file's fixed input (H, W), or None when it takes any size
        try:
            self._net = load_network(path, backend, threads, precision, self._checked, log, what="detector ")
        except DetectorModelError:
            raise
        except ModelError as exc:
            raise DetectorModelError(path, exc.problem) from None

    @classmethod
    def from_settings(cls, settings: DetectorSettings, log=None) -> MoveNetDetector:
        path = settings.model or default_detector_path()
        if not path:
            raise DetectorModelError("", f"no {MOVENET_FILE} installed (make setup builds it; "
                                         "or set detector_model)")
        return cls(path, settings.input_size, settings.threshold, settings.backend, settings.threads,
                   settings.precision, settings.box_scale, log=log)

    def update(self, settings: DetectorSettings) -> None:
        self.score_threshold = settings.threshold
        self.box_scale = settings.box_scale

    def _checked(self, network: Network) -> Network:
        """``network`` once its inputs and outputs are MoveNet's and it ran on a black
        frame, so that a wrong file fails at load time."""
        self._fixed = _check_io(self.path, network.inputs, network.outputs, network.input_types)
        try:
            self._detect(network, np.zeros((480, 640, 3), np.uint8))
        except DetectorModelError:
            raise
        except Exception as exc:
            raise DetectorModelError(self.path, f"inference failed: {str(exc).strip().splitlines()[0]}") from None
        return network

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """The file's fixed input (H, W), or None when it takes any size."""
        return self._fixed

    @property
    def description(self) -> str:
        size = (f"{self._fixed[1]}x{self._fixed[0]} (fixed by the file)" if self._fixed
                else f"{self.input_size}x{self.input_size}" if self.square
                else f"{self.input_size} on the longer side")
        return f"movenet {Path(self.path).name} {size} on {self._net.description}"

    def __call__(self, frame_bgr: np.ndarray) -> Detections:
        """People scoring at least ``score_threshold``, best first (see decode_movenet)."""
        return self._detect(self._net, frame_bgr)

    def _detect(self, network: Network, frame_bgr: np.ndarray) -> Detections:
        input_hw = self._fixed or movenet_input_shape(frame_bgr.shape, self.input_size, self.square)
        image, scale, _ = letterbox(frame_bgr, *input_hw)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        out = np.asarray(network.run(rgb.astype(np.int32)[None]))
        if out.ndim != 3 or out.shape[0] != 1 or out.shape[2] != MOVENET_ROW:
            raise DetectorModelError(self.path, f"output shape {list(out.shape)}, expected "
                                                f"[1, N, {MOVENET_ROW}]")
        return decode_movenet(out[0], input_hw, scale, frame_bgr.shape[:2], self.score_threshold,
                              box_scale=self.box_scale)
