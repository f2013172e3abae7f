"""Built-in person detectors for ``mode: detector`` when no detector node runs.

- ``MoveNetDetector`` (the default): MoveNet MultiPose Lightning, a learned detector of
  up to 6 people with a box, a score and 17 COCO keypoints each, converted to ONNX at
  set-up time (scripts/make_detector.sh) and run by OpenVINO or ONNX Runtime.
- ``HogPersonDetector``: OpenCV's HOG + linear SVM people detector, which ships with
  OpenCV. It finds upright pedestrians of 128 px or more only, and is slow (~100 ms per
  VGA frame on 2 cores): the fallback when no MoveNet file is there.

Both are slow next to the pose network's crops, so the pipeline runs them on a thread of
their own (``BackgroundDetector``) every few frames and follows people by their
keypoints in between.
"""
from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lapx_ros.geometry import letterbox, non_max_suppression
from lapx_ros.runtime.engine import (
    BACKENDS,
    PRECISIONS,
    ModelError,
    check_file,
    import_openvino,
    load_with_fallback,
    onnxruntime_session,
    onnxruntime_shapes,
    openvino_config,
    openvino_read_model,
    openvino_shapes,
)

DETECTORS = ("movenet", "hog")
MOVENET_FILE = "movenet-multipose-lightning.onnx"
# Input sides the node offers: MoveNet needs multiples of 32 (its stride); the model card
# recommends 256 for the longer side, 384 finds more of the small people (docs).
MOVENET_SIZES = (192, 256, 320, 384, 448, 512)
MOVENET_STRIDE = 32
MOVENET_JOINTS = 17  # COCO order: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles
MOVENET_ROW = 3 * MOVENET_JOINTS + 5  # per person: (y, x, score) x 17, then ymin, xmin, ymax, xmax, score
# Two MoveNet people overlapping more than this are one person found twice.
MOVENET_NMS_IOU = 0.5

# HOG's window is 64x128 pixels: people smaller than about 128 px need upscaling.
HOG_WINDOW_HEIGHT = 128
# Scale step between pyramid levels: 1.1 halves the cost of OpenCV's 1.05 and still
# finds people of every size in between.
PYRAMID_STEP = 1.1


class HogPersonDetector:
    """Person boxes (x0, y0, x1, y1) and scores from OpenCV's default HOG detector."""

    def __init__(self, scale: float, score_threshold: float, nms_threshold: float = 0.4):
        self.scale = scale
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    @property
    def description(self) -> str:
        return (f"hog (OpenCV {cv2.__version__} people detector, scale {self.scale:g}, "
                f"threshold {self.score_threshold:g})")

    def __call__(self, frame_bgr: np.ndarray):
        """Boxes (N, 4) float64 in frame pixels and scores (N,), best first."""
        image = frame_bgr
        if self.scale != 1.0:
            image = cv2.resize(frame_bgr, None, fx=self.scale, fy=self.scale,
                               interpolation=cv2.INTER_LINEAR)
        if min(image.shape[:2]) < HOG_WINDOW_HEIGHT:
            return np.zeros((0, 4)), np.zeros(0)
        rects, weights = self._hog.detectMultiScale(image, winStride=(8, 8), padding=(0, 0),
                                                    scale=PYRAMID_STEP)
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        weights = np.asarray(weights, np.float64).reshape(-1)
        keep = cv2.dnn.NMSBoxes([list(map(int, r)) for r in rects], weights.tolist(),
                                self.score_threshold, self.nms_threshold)
        keep = np.asarray(keep, int).reshape(-1)
        rects = np.asarray(rects, np.float64)[keep] / self.scale
        boxes = np.column_stack([rects[:, 0], rects[:, 1],
                                 rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]])
        order = np.argsort(-weights[keep])
        return boxes[order], weights[keep][order]


class BackgroundDetector:
    """Runs a slow detector on a thread of its own so that pose estimation never waits.

    ``submit`` hands over a frame when the detector is idle; ``take`` returns the
    newest finished result once. With ``synchronous`` the detector runs inside
    ``submit`` (tests, offline evaluation). One long-lived thread does every detection:
    a new thread per run made glibc spread the engine's allocations over ever more
    arenas, and the node's memory grew with every run.
    """

    def __init__(self, detect, synchronous: bool = False):
        self.detect = detect
        self.synchronous = synchronous
        self._cond = threading.Condition()
        self._busy = False
        self._frame = None
        self._result = None
        self._thread: threading.Thread | None = None
        self.last_error = ""

    def submit(self, frame_bgr: np.ndarray) -> bool:
        """Start a detection on ``frame_bgr``; False when one is still running."""
        with self._cond:
            if self._busy:
                return False
            self._busy = True
            if not self.synchronous:
                self._frame = frame_bgr.copy()
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, daemon=True, name="lapx_detector")
                    self._thread.start()
                self._cond.notify()
                return True
        self._run(frame_bgr)
        return True

    def _serve(self) -> None:
        while True:
            with self._cond:
                while self._frame is None:
                    self._cond.wait()
                frame, self._frame = self._frame, None
            self._run(frame)

    def _run(self, frame_bgr) -> None:
        try:
            result = self.detect(frame_bgr)
        except Exception as exc:  # a detector failure must not end the pipeline
            result, self.last_error = None, f"{type(exc).__name__}: {exc}"
        with self._cond:
            if result is not None:
                self._result = result
            self._busy = False

    def take(self):
        """(boxes, scores) of the newest finished detection, or None; each result once."""
        with self._cond:
            result, self._result = self._result, None
            return result


# ------------------------------------------------------------------------------ MoveNet
class DetectorModelError(ModelError):
    """The detector file cannot be used; the message names the file and the reason."""

    def __init__(self, path: str, problem: str):
        super().__init__(path, problem)
        self.args = (f"detector model {path!r}: {problem}",)


class Detections(tuple):
    """``(boxes, scores)`` as every detector returns them (so ``boxes, scores = d``
    still works), plus ``keypoints`` (N, 17, 3): x, y [frame pixels] and score of each
    person's COCO joints, in the order of the boxes."""

    def __new__(cls, boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray):
        self = super().__new__(cls, (boxes, scores))
        self.keypoints = keypoints
        return self

    @property
    def boxes(self) -> np.ndarray:
        return self[0]

    @property
    def scores(self) -> np.ndarray:
        return self[1]


def default_detector_path() -> str:
    """The MoveNet file that set-up installs (share/lapx_ros/detectors of this Python's
    prefix, or of the ament install); "" when there is none."""
    folders = [Path(sys.prefix) / "share" / "lapx_ros" / "detectors"]
    try:
        from ament_index_python.packages import get_package_share_directory

        folders.append(Path(get_package_share_directory("lapx_ros")) / "detectors")
    except Exception:  # not installed through ament, or ament_index absent
        pass
    for folder in folders:
        if (folder / MOVENET_FILE).is_file():
            return str(folder / MOVENET_FILE)
    return ""


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
    input's name and its fixed (H, W) or None when they are dynamic."""
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
    return name, None if h is None else (h, w)


class _OrtNet:
    name = "onnxruntime"

    def __init__(self, path: str, threads: int):
        import onnxruntime as ort

        try:
            self._session = onnxruntime_session(path, threads)
        except ModelError as exc:
            raise DetectorModelError(path, exc.problem) from None
        s = self._session
        types = {t.name: t.type.replace("tensor(", "").rstrip(")") for t in s.get_inputs()}
        self.input_name, self.fixed = _check_io(path, onnxruntime_shapes(s.get_inputs()),
                                                onnxruntime_shapes(s.get_outputs()), types)
        self.description = f"onnxruntime {ort.__version__} (fp32, {threads} thread{'s' * (threads > 1)})"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self.input_name: x})[0]


class _OpenVinoNet:
    """One compiled network per input shape (the file's input size is dynamic; OpenVINO
    runs a static shape fastest), compiled when a shape is first seen."""

    name = "openvino"

    def __init__(self, path: str, threads: int, precision: str):
        ov = import_openvino()
        self._core = ov.Core()
        try:
            self._model = openvino_read_model(self._core, path)
        except ModelError as exc:
            raise DetectorModelError(path, exc.problem) from None
        m = self._model
        types = {n: p.get_element_type().get_type_name() for p in m.inputs for n in p.get_names()}
        types = {n: {"i32": "int32"}.get(t, t) for n, t in types.items()}
        self.input_name, self.fixed = _check_io(path, openvino_shapes(m.inputs),
                                                openvino_shapes(m.outputs), types)
        self._config = openvino_config(threads, precision)
        self._requests: dict = {}
        self._threads = threads
        self._version = ov.__version__.split("-")[0]
        self._precision = ""

    def _request(self, shape):
        request = self._requests.get(shape)
        if request is None:
            model = self._model.clone()
            if self.fixed is None:
                model.reshape({self.input_name: list(shape)})
            compiled = self._core.compile_model(model, "CPU", self._config)
            self._precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
            if len(self._requests) >= 4:  # a camera rarely changes size: keep a few
                self._requests.clear()
            request = self._requests[shape] = compiled.create_infer_request()
        return request

    def __call__(self, x: np.ndarray) -> np.ndarray:
        request = self._request(tuple(x.shape))
        request.infer({0: x})
        return request.get_output_tensor(0).data.copy()

    @property
    def description(self) -> str:
        return (f"openvino {self._version} ({self._precision or 'not compiled'}, {self._threads} "
                f"thread{'s' * (self._threads > 1)})")


class MoveNetDetector:
    """People (boxes, scores, 17 keypoints) in a BGR frame from MoveNet MultiPose.

    The frame is letterboxed into the network input: ``input_size`` on its longer side,
    the shorter side padded to a multiple of 32 (``square``: padded to ``input_size``, as
    the model card shows it; the same people on COCO train2017, a quarter more work on a
    4:3 frame); a file with a fixed input size uses that size. At most 6 people come out. The
    file is checked when loaded (inputs, outputs, one run on a black frame): a file that
    cannot serve raises DetectorModelError naming it and the problem.
    """

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
        try:
            check_file(path)
        except ModelError as exc:
            raise DetectorModelError(path, exc.problem) from None
        self._net = self._load(path, backend, threads, precision, log)

    def _load(self, path, backend, threads, precision, log):
        def checked(net):
            self._net = net
            self._dry_run()
            return net

        return load_with_fallback(path, backend, lambda: checked(_OpenVinoNet(path, threads, precision)),
                                  lambda: checked(_OrtNet(path, threads)), log,
                                  error=DetectorModelError, what="detector ")

    def _dry_run(self) -> None:
        """One run on a black frame, so that a wrong file fails at load time."""
        try:
            self(np.zeros((480, 640, 3), np.uint8))
        except DetectorModelError:
            raise
        except Exception as exc:
            raise DetectorModelError(self.path, f"inference failed: {str(exc).strip().splitlines()[0]}") from None

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """The file's fixed input (H, W), or None when it takes any size."""
        return self._net.fixed

    @property
    def description(self) -> str:
        size = (f"{self._net.fixed[1]}x{self._net.fixed[0]} (fixed by the file)" if self._net.fixed
                else f"{self.input_size}x{self.input_size}" if self.square
                else f"{self.input_size} on the longer side")
        return f"movenet {Path(self.path).name} {size} on {self._net.description}"

    def __call__(self, frame_bgr: np.ndarray) -> Detections:
        """People scoring at least ``score_threshold``, best first (see decode_movenet)."""
        input_hw = self._net.fixed or movenet_input_shape(frame_bgr.shape, self.input_size, self.square)
        image, scale, _ = letterbox(frame_bgr, *input_hw)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        out = np.asarray(self._net(rgb.astype(np.int32)[None]))
        if out.ndim != 3 or out.shape[0] != 1 or out.shape[2] != MOVENET_ROW:
            raise DetectorModelError(self.path, f"output shape {list(out.shape)}, expected "
                                                f"[1, N, {MOVENET_ROW}]")
        return decode_movenet(out[0], input_hw, scale, frame_bgr.shape[:2], self.score_threshold,
                              box_scale=self.box_scale)


# ------------------------------------------------------------------------ the choice
@dataclass(frozen=True)
class DetectorSettings:
    """What ``create_person_detector`` needs (the node's detector_* parameters)."""

    kind: str = "movenet"  # movenet | hog
    model: str = ""  # MoveNet file; "" = default_detector_path()
    input_size: int = 384
    threshold: float = 0.1  # MoveNet person score
    threads: int = 1
    backend: str = "auto"
    # f32 even where the pose network runs bf16: in bf16 MoveNet lost people and found
    # duplicates (COCO train2017 targets found 38 of 72 against 44, precision 0.588 against
    # 0.607) for half the time a run (28 against 53 ms at 640x480 on an AVX-512 BF16 VM)
    precision: str = "f32"
    box_scale: float = 1.0  # MoveNet boxes grown by this (they hug the keypoints)
    hog_scale: float = 1.0
    hog_threshold: float = 0.3


def create_person_detector(settings: DetectorSettings, log=None):
    """(detector, problem): the detector asked for, or HOG with the reason why the
    MoveNet file could not be used ("" when nothing went wrong). Never raises for a bad
    file: detector mode stays usable on HOG, and the caller reports the problem."""
    s = settings
    if s.kind not in DETECTORS:
        raise ValueError(f"detector must be one of {DETECTORS}, got {s.kind!r}")
    problem = ""
    if s.kind == "movenet":
        path = s.model or default_detector_path()
        try:
            if not path:
                raise DetectorModelError(
                    "", f"no {MOVENET_FILE} installed (make setup builds it; or set detector_model)")
            return MoveNetDetector(path, s.input_size, s.threshold, s.backend, s.threads, s.precision,
                                   s.box_scale, log=log), ""
        except DetectorModelError as exc:
            problem = str(exc)
    return HogPersonDetector(s.hog_scale, s.hog_threshold), problem


def update_person_detector(detector, settings: DetectorSettings) -> None:
    """Apply the settings that may change while the detector runs (thresholds, scales)."""
    if isinstance(detector, MoveNetDetector):
        detector.score_threshold = settings.threshold
        detector.box_scale = settings.box_scale
    elif isinstance(detector, HogPersonDetector):
        detector.scale = settings.hog_scale
        detector.score_threshold = settings.hog_threshold
