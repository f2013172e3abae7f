"""The node's parameters, declared once: type and default (NodeConfig), range or
choices, description, and whether they may change while the node runs.

The node reads a typed NodeConfig, never raw parameter values. ``check`` gives the
reason a value is refused, both for the parameter file at start and for runtime sets.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lapx_ros.heatmaps import DECODE_METHODS
from lapx_ros.runtime.engine import BACKENDS, PRECISIONS
from lapx_ros.runtime.estimator import MODES
from lapx_ros.topdown import SEARCH_PASSES


@dataclass(frozen=True)
class NodeConfig:
    """Typed parameter values; field names are the ROS parameter names."""

    # model and backend (load time)
    model_path: str = ""
    backend: str = "auto"
    precision: str = "auto"
    threads: int = 2
    autostart: bool = True
    retry_period: float = 5.0
    # input
    input_topic: str = "camera/image_raw"
    input_transport: str = "raw"
    camera_info_topic: str = ""
    qos_reliability: str = "best_effort"
    frame_id: str = ""
    max_image_pixels: int = 3840 * 2160
    max_stamp_future: float = 1.0
    # who to look at
    mode: str = "single"
    boxes_topic: str = "person_boxes"
    boxes_wait: float = 0.05
    boxes_stamp_tolerance: float = 0.005
    max_people: int = 5
    detector_interval: int = 5
    detector_scale: float = 1.0
    detector_threshold: float = 0.3
    # keypoints
    keypoint_threshold: float = 0.2
    person_threshold: float = 0.3
    search_interval: int = 5
    search_passes: int = SEARCH_PASSES
    box_padding: float = 1.25
    decode: str = "dark"
    flip_test: bool = False
    track_match_threshold: float = 0.3
    track_max_missed: int = 15
    smoothing: bool = False
    smoothing_min_cutoff: float = 1.0
    smoothing_beta: float = 0.05
    smoothing_d_cutoff: float = 1.0
    # outputs
    publish_markers: bool = True
    marker_depth: float = 2.0
    marker_lifetime: float = 0.5
    diagnostics_period: float = 1.0
    stale_timeout: float = 2.0

    def replace(self, **changes) -> NodeConfig:
        return dataclasses.replace(self, **changes)


_DEFAULTS = NodeConfig()
_TYPES = {f.name: type(getattr(_DEFAULTS, f.name)) for f in dataclasses.fields(NodeConfig)}


@dataclass(frozen=True)
class ParamSpec:
    name: str
    description: str
    runtime: bool = False  # may change while the node is active
    min: float | None = None
    max: float | None = None
    choices: tuple = ()

    @property
    def default(self):
        return getattr(_DEFAULTS, self.name)

    @property
    def type(self) -> type:
        return _TYPES[self.name]

    def check(self, value) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        t = self.type
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not t:
            return f"{self.name} must be of type {t.__name__}, got {type(value).__name__} {value!r}"
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {list(self.choices)}, got {value!r}"
        if t is float and value != value:
            return f"{self.name} must be a number, got NaN"
        if self.min is not None and value < self.min:
            return f"{self.name} must be >= {self.min}, got {value}"
        if self.max is not None and value > self.max:
            return f"{self.name} must be <= {self.max}, got {value}"
        return None


_SPECS = (
    ParamSpec("model_path", "ONNX model file exported by lapx-export; empty = the shipped default model"),
    ParamSpec("backend", "inference backend; auto = OpenVINO when installed, else ONNX Runtime",
              choices=BACKENDS),
    ParamSpec("precision", "OpenVINO inference precision; auto = the CPU's fastest (bf16 where supported)",
              choices=PRECISIONS),
    ParamSpec("threads", "CPU threads for inference", min=1, max=64),
    ParamSpec("autostart", "configure and activate without an external lifecycle manager"),
    ParamSpec("retry_period", "seconds between autostart attempts while the model cannot be loaded",
              min=0.5, max=3600.0),
    ParamSpec("input_topic", "sensor_msgs/Image topic (remappable); /compressed is appended for compressed input"),
    ParamSpec("input_transport", "raw = sensor_msgs/Image, compressed = sensor_msgs/CompressedImage (JPEG/PNG)",
              choices=("raw", "compressed")),
    ParamSpec("camera_info_topic", "sensor_msgs/CameraInfo topic; empty = camera_info beside the image topic"),
    ParamSpec("qos_reliability", "input QoS reliability; must be compatible with the camera's publisher",
              choices=("best_effort", "reliable")),
    ParamSpec("frame_id", "frame_id for outputs when set; otherwise the image's (frames without one are dropped)"),
    ParamSpec("max_image_pixels", "larger frames are dropped", runtime=True, min=4, max=100_000_000),
    ParamSpec("max_stamp_future", "frames stamped more than this many seconds ahead of the node's clock are dropped",
              runtime=True, min=0.0, max=3600.0),
    ParamSpec("mode", "single = one person followed over frames; boxes = person boxes from boxes_topic; "
                      "detector = built-in HOG person detector", choices=MODES),
    ParamSpec("boxes_topic", "person boxes (see the README: vision_msgs/Detection2DArray when installed, "
                             "else lapx_ros/HumanPoseArray) for mode boxes"),
    ParamSpec("boxes_wait", "seconds to wait for the boxes matching a frame's stamp", runtime=True,
              min=0.0, max=1.0),
    ParamSpec("boxes_stamp_tolerance", "seconds within which a boxes stamp matches a frame stamp",
              runtime=True, min=0.0, max=1.0),
    ParamSpec("max_people", "most people estimated per frame (highest scores first)", runtime=True,
              min=1, max=50),
    ParamSpec("detector_interval", "frames between runs of the built-in detector (keypoints followed in between)",
              runtime=True, min=1, max=1000),
    ParamSpec("detector_scale", "image scale for the built-in detector (>1 finds smaller people, slower)",
              runtime=True, min=0.1, max=4.0),
    ParamSpec("detector_threshold", "built-in detector score threshold", runtime=True, min=-5.0, max=5.0),
    ParamSpec("keypoint_threshold", "confidence below which a joint counts as not seen (drawing, tracking)",
              runtime=True, min=0.0, max=1.0),
    ParamSpec("person_threshold", "mean joint confidence below which nobody is reported (and searched again)",
              runtime=True, min=0.0, max=1.0),
    ParamSpec("search_interval", "mode single: while nobody is followed, frames between whole-frame searches "
                                 "(search_passes network calls); frames between crop where the last search "
                                 "looked. 1 = search every such frame", runtime=True, min=1, max=1000),
    ParamSpec("search_passes", "network calls of a whole-frame search: the whole frame, then each time a crop "
                               "around the joints the previous call found (lapx-eval --passes)", runtime=True,
              min=1, max=5),
    ParamSpec("box_padding", "context kept around a person box when cropping", runtime=True,
              min=1.0, max=3.0),
    ParamSpec("decode", "heatmap peak decoding", runtime=True, choices=DECODE_METHODS),
    ParamSpec("flip_test", "also run each crop mirrored and average the heatmaps: more accurate "
                           "(MODEL.md), twice the network calls", runtime=True),
    ParamSpec("track_match_threshold", "box IoU / keypoint similarity needed to keep a track id",
              runtime=True, min=0.0, max=1.0),
    ParamSpec("track_max_missed", "frames a person may be unseen and keep the id", runtime=True,
              min=0, max=10_000),
    ParamSpec("smoothing", "One-Euro smoothing of keypoints", runtime=True),
    ParamSpec("smoothing_min_cutoff", "One-Euro minimum cut-off [Hz]; lower = smoother at rest",
              runtime=True, min=0.001, max=100.0),
    ParamSpec("smoothing_beta", "One-Euro speed coefficient; higher = less lag when moving",
              runtime=True, min=0.0, max=100.0),
    ParamSpec("smoothing_d_cutoff", "One-Euro cut-off of the speed estimate [Hz]", runtime=True,
              min=0.001, max=100.0),
    ParamSpec("publish_markers", "publish human_pose/markers", runtime=True),
    ParamSpec("marker_depth", "distance [m] of the image plane the markers are drawn on", runtime=True,
              min=0.01, max=1000.0),
    ParamSpec("marker_lifetime", "seconds RViz keeps a marker without update (0 = forever)", runtime=True,
              min=0.0, max=3600.0),
    ParamSpec("diagnostics_period", "seconds between /diagnostics messages", min=0.1, max=60.0),
    ParamSpec("stale_timeout", "seconds without frames before diagnostics report STALE", runtime=True,
              min=0.1, max=3600.0),
)
SPECS = {s.name: s for s in _SPECS}
assert set(SPECS) == set(_TYPES), "every NodeConfig field needs a ParamSpec"


def check(name: str, value) -> str | None:
    """Why setting ``name`` to ``value`` at start is refused, or None."""
    spec = SPECS.get(name)
    if spec is None:
        return f"unknown parameter {name!r}"
    return spec.check(value)


def check_runtime(name: str, value) -> str | None:
    """Why setting ``name`` to ``value`` while the node runs is refused, or None."""
    spec = SPECS.get(name)
    if spec is not None and not spec.runtime:
        return f"{name} is read-only while the node runs (set it at start)"
    return check(name, value)


def coerce(name: str, value):
    """``value`` as the parameter's Python type (ints are accepted for floats)."""
    return SPECS[name].type(value)


def descriptor(spec: ParamSpec):
    """The rcl_interfaces ParameterDescriptor advertised for ``spec``."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    desc = ParameterDescriptor(name=spec.name, type=types[spec.type], description=spec.description,
                               read_only=not spec.runtime)
    if spec.choices:
        desc.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.type is int and (spec.min is not None or spec.max is not None):
        desc.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max), step=1)]
    elif spec.type is float and (spec.min is not None or spec.max is not None):
        desc.floating_point_range = [FloatingPointRange(from_value=float(spec.min),
                                                        to_value=float(spec.max), step=0.0)]
    return desc
