"""The node's parameters, declared once in ``PARAMETERS``: name, default (and so type),
range or choices, description, and whether they may change while the node runs.

Everything else is derived from that table, in the style of generate_parameter_library:
the typed ``NodeConfig`` the node reads (never raw parameter values), the descriptors
it declares, the runtime pipeline's settings (``pipeline_config``), ``config/lapx.yaml``
and the parameter table of docs/node.md (``python -m lapx_ros.ros.params --write``
regenerates both; a test keeps them in step). ``check`` gives the reason a value is
refused, both for the parameter file at start and for runtime sets.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from lapx_ros.geometry import JOINTS_BOX_PADDING, PERSON_BOX_PADDING
from lapx_ros.heatmaps import DECODE_METHODS
from lapx_ros.runtime.detectors import DETECTORS, DetectorSettings
from lapx_ros.runtime.detectors.movenet import MOVENET_FILE, MOVENET_SIZES
from lapx_ros.runtime.backend import BACKENDS, PRECISIONS
from lapx_ros.runtime.engine import MODEL_PRESETS
from lapx_ros.runtime.modes import MODES
from lapx_ros.runtime.pipeline import PipelineConfig
from lapx_ros.runtime.loader import ModelSettings
from lapx_ros.runtime.smoothing import OneEuroParams
from lapx_ros.topdown import SEARCH_PASSES

NODE_NAME = "lapx_pose"
QOS_RELIABILITIES = ("auto", "reliable", "best_effort")


@dataclass(frozen=True)
class Param:
    """One parameter. Its type is its default's (ints are accepted for floats)."""

    name: str
    default: bool | int | float | str
    description: str
    group: str
    runtime: bool = False  # may change while the node is active
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    odd: bool = False  # ints only: odd values from min (a window's side, centred on a pixel)

    @property
    def type(self) -> type:
        return type(self.default)

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
        if self.odd and value % 2 == 0:
            return f"{self.name} must be odd, got {value}"
        return None


MODEL, INPUT, WHO, KEYPOINTS, DEPTH, OUTPUTS = (
    "model and inference", "input", "who to look at", "keypoints, tracking, smoothing",
    "depth (3D keypoints)", "outputs")
DEPTH_TRANSPORTS = ("raw", "compressedDepth")

PARAMETERS = (
    # --- model and inference (read when the node configures) ---
    Param("model_path", "", "ONNX model file exported by lapx-export; empty = the shipped model of "
          "model_preset", MODEL),
    Param("model_preset", "default", "shipped model used when model_path is empty: default, or accurate "
          "(several network runs averaged per crop: more accurate, several times slower; MODEL.md)",
          MODEL, choices=tuple(MODEL_PRESETS)),
    Param("backend", "auto", "inference backend; auto = OpenVINO when installed, else ONNX Runtime",
          MODEL, choices=BACKENDS),
    Param("precision", "auto", "OpenVINO inference precision of the pose network; auto = the CPU's "
          "fastest (bf16 where supported); the built-in detector always runs f32",
          MODEL, choices=PRECISIONS),
    Param("threads", 2, "CPU threads for inference", MODEL, min=1, max=64),
    Param("autostart", True, "configure and activate without an external lifecycle manager", MODEL),
    Param("retry_period", 5.0, "seconds between autostart attempts while the model cannot be loaded",
          MODEL, min=0.5, max=3600.0),
    # --- input ---
    Param("input_topic", "camera/image_raw",
          "sensor_msgs/Image topic (relative names follow the namespace); /compressed is appended "
          "for compressed input", INPUT),
    Param("input_transport", "raw", "raw = sensor_msgs/Image, compressed = sensor_msgs/CompressedImage "
          "(JPEG/PNG) on <input_topic>/compressed", INPUT, choices=("raw", "compressed")),
    Param("camera_info_topic", "", "sensor_msgs/CameraInfo topic; empty = camera_info beside the image topic",
          INPUT),
    Param("qos_reliability", "auto",
          "input QoS reliability. auto = the camera publisher's own (reliable when every publisher is "
          "reliable, which repairs frames that lose a fragment; else best effort), followed when "
          "publishers come and go; reliable / best_effort fix it", INPUT, choices=QOS_RELIABILITIES),
    Param("qos_depth", 5, "input queue depth (keep last). The node always works on the newest frame; "
          "a depth above 1 keeps a frame that arrives while the previous one is being handed over, "
          "and what is replaced unseen is counted as stale", INPUT, min=1, max=100),
    Param("frame_id", "", "frame_id for outputs when set; otherwise the image's (frames without one "
          "are dropped)", INPUT),
    Param("max_image_pixels", 3840 * 2160, "larger frames are dropped", INPUT, runtime=True,
          min=4, max=100_000_000),
    Param("max_stamp_future", 1.0, "frames stamped more than this many seconds ahead of the node's "
          "clock are dropped", INPUT, runtime=True, min=0.0, max=3600.0),
    # --- who to look at ---
    Param("mode", "single", "; ".join(f"{name} = {mode.summary}" for name, mode in MODES.items()), WHO,
          choices=tuple(MODES)),
    Param("boxes_topic", "person_boxes", "person boxes (vision_msgs/Detection2DArray when installed, "
          "else lapx_ros/HumanPoseArray) for mode boxes", WHO),
    Param("boxes_wait", 0.05, "seconds to wait for the boxes matching a frame's stamp (less once "
          "boxes of a newer frame came)", WHO, runtime=True, min=0.0, max=1.0),
    Param("boxes_stamp_tolerance", 0.005, "seconds within which a boxes stamp matches a frame stamp",
          WHO, runtime=True, min=0.0, max=1.0),
    Param("max_people", 5, "most people estimated per frame (highest scores first)", WHO,
          runtime=True, min=1, max=50),
    Param("detector", "movenet", "built-in detector of mode detector: "
          + ", ".join(f"{name} = {kind.summary}" for name, kind in DETECTORS.items()), WHO,
          choices=tuple(DETECTORS)),
    Param("detector_model", "", f"MoveNet MultiPose ONNX file; empty = {MOVENET_FILE} as set-up "
          "installs it (share/lapx_ros/detectors)", WHO),
    Param("detector_input_size", 384, "MoveNet input: the frame's longer side is scaled to this many "
          "pixels, the other padded to a multiple of 32; smaller = faster, misses more small people",
          WHO, choices=MOVENET_SIZES),
    Param("detector_threads", 1, "CPU threads of the built-in detector, which runs on a thread of its "
          "own beside the pose network", WHO, min=1, max=64),
    Param("detector_interval", 5, "frames between runs of the built-in detector (keypoints followed "
          "in between)", WHO, runtime=True, min=1, max=1000),
    Param("detector_threshold", 0.07, "MoveNet person score below which a detection is dropped (tuned "
          "on COCO train2017, deliberately low: the pose network confirms people)", WHO, runtime=True,
          min=0.0, max=1.0),
    Param("detector_scale", 1.0, "hog only: image scale (>1 finds smaller people, slower)", WHO,
          runtime=True, min=0.1, max=4.0),
    Param("detector_hog_threshold", 0.3, "hog only: SVM score threshold", WHO, runtime=True,
          min=-5.0, max=5.0),
    # --- keypoints, tracking, smoothing ---
    Param("keypoint_threshold", 0.2, "confidence below which a joint counts as not seen (drawing, "
          "tracking)", KEYPOINTS, runtime=True, min=0.0, max=1.0),
    Param("person_threshold", 0.3, "mean joint confidence a new person needs to be reported "
          "(track_confirm_frames frames in a row); mode single searches the whole frame again when "
          "the followed person falls below the keep threshold (see person_keep_margin)", KEYPOINTS, runtime=True, min=0.0, max=1.0),
    Param("person_keep_margin", 0.1, "hysteresis: a person already reported keeps being reported "
          "(same id) down to person_threshold minus this; lower frames count as missed",
          KEYPOINTS, runtime=True, min=0.0, max=1.0),
    Param("search_interval", 5, "mode single: while nobody is followed, frames between whole-frame "
          "searches (search_passes network calls); the frames between crop where the last search "
          "looked. 1 = search every such frame", KEYPOINTS, runtime=True, min=1, max=1000),
    Param("search_passes", SEARCH_PASSES, "network calls of a whole-frame search: the whole frame, "
          "then each time a crop around the joints the previous call found (lapx-eval --passes)",
          KEYPOINTS, runtime=True, min=1, max=5),
    Param("search_passes_when_busy", 1, "passes of a whole-frame search when a newer frame already "
          "waits: the rest of search_passes run only while the node is idle, so a search never costs "
          "the stream frames; the next frame's crop around the joints found refines instead. "
          "= search_passes: every search runs in full (the same result at any frame rate)",
          KEYPOINTS, runtime=True, min=1, max=5),
    Param("box_padding", PERSON_BOX_PADDING, "mode boxes: context kept around each person box received when cropping "
          "(1 = the box itself, which scored best on COCO people; the crops that follow a person's "
          "joints keep 1.25 around them)", KEYPOINTS, runtime=True, min=1.0, max=3.0),
    Param("decode", "dark", "heatmap peak decoding (as lapx-eval)", KEYPOINTS, runtime=True,
          choices=DECODE_METHODS),
    Param("flip_test", False, "also run each crop mirrored and average the heatmaps: more accurate "
          "(MODEL.md), twice the network calls", KEYPOINTS, runtime=True),
    Param("track_match_threshold", 0.3, "box IoU / keypoint similarity needed to keep a track id",
          KEYPOINTS, runtime=True, min=0.0, max=1.0),
    Param("track_max_missed", 15, "frames a reported person may be unseen (or below the keep "
          "threshold) and keep the id; meanwhile it is looked for where its motion takes it",
          KEYPOINTS, runtime=True, min=0, max=10_000),
    Param("track_confirm_frames", 2, "modes boxes and detector: frames in a row a new person must "
          "reach person_threshold before it is reported and given an id (1 = at once); a detection "
          "the pose network does not confirm in the frame after costs no id. Mode single and "
          "person_threshold 0 report at once", KEYPOINTS, runtime=True, min=1, max=100),
    Param("smoothing", False, "One-Euro smoothing of keypoints", KEYPOINTS, runtime=True),
    Param("smoothing_min_cutoff", 1.0, "One-Euro minimum cut-off [Hz]; lower = smoother at rest",
          KEYPOINTS, runtime=True, min=0.001, max=100.0),
    Param("smoothing_beta", 0.05, "One-Euro speed coefficient; higher = less lag when moving",
          KEYPOINTS, runtime=True, min=0.0, max=100.0),
    Param("smoothing_d_cutoff", 1.0, "One-Euro cut-off of the speed estimate [Hz]", KEYPOINTS,
          runtime=True, min=0.001, max=100.0),
    # --- depth (3D keypoints) ---
    Param("depth_topic", "", "depth image registered to the colour image (sensor_msgs/Image, 16UC1 "
          "in mm or 32FC1 in m; e.g. camera/aligned_depth_to_color/image_raw; relative names follow "
          "the namespace), its CameraInfo on camera_info beside it; empty = no depth: every "
          "position is NaN", DEPTH),
    Param("depth_transport", "raw", "raw = sensor_msgs/Image on depth_topic; compressedDepth = "
          "image_transport's sensor_msgs/CompressedImage on <depth_topic>/compressedDepth (a "
          "depth_topic ending in /compressedDepth selects it too)", DEPTH, choices=DEPTH_TRANSPORTS),
    Param("depth_stamp_tolerance", 0.02, "seconds within which a depth stamp matches a frame stamp "
          "(the nearest wins); RGB-D drivers stamp registered depth like its colour frame or "
          "within half a frame period", DEPTH, runtime=True, min=0.0, max=1.0),
    Param("depth_wait", 0.25, "seconds after a frame came within which its depth image still "
          "gives it 3D: the frame's poses are held until the depth comes (the node goes on with the "
          "next frame meanwhile), at most this long, less once newer depth came; then published "
          "without 3D (counted in frames_depth_too_late when the depth comes later). 0 = never held",
          DEPTH, runtime=True, min=0.0, max=1.0),
    Param("depth_window", 5, "side [depth pixels] of the square read around each joint; holes and "
          "noise sit exactly at joints", DEPTH, runtime=True, min=1, max=31, odd=True),
    Param("depth_min", 0.2, "nearest plausible depth [m]: nearer pixels are ignored (the camera's "
          "blind zone)", DEPTH, runtime=True, min=0.0, max=100.0),
    Param("depth_max", 10.0, "farthest plausible depth [m]: farther pixels are ignored", DEPTH,
          runtime=True, min=0.01, max=100.0),
    Param("depth_surface_gap", 0.1, "depths in a joint's window further apart than this [m] "
          "belong to different surfaces (a limb, the wall behind it); the nearest wins", DEPTH,
          runtime=True, min=0.001, max=10.0),
    Param("depth_min_pixels", 4, "pixels the nearest surface needs in a joint's window (fewer: "
          "flying pixels at an edge, skipped); at most depth_window squared", DEPTH, runtime=True,
          min=1, max=961),
    Param("depth_max_behind", 0.5, "a joint this much [m] deeper than its person's torso lies on "
          "the background: no depth", DEPTH, runtime=True, min=0.001, max=10.0),
    Param("depth_max_in_front", 1.0, "a joint this much [m] nearer than its person's torso is on "
          "something else: no depth (more than behind: an arm reaches towards the camera)", DEPTH,
          runtime=True, min=0.001, max=10.0),
    # --- outputs ---
    Param("publish_markers", True, "publish human_pose/markers", OUTPUTS, runtime=True),
    Param("marker_depth", 2.0, "distance [m] of the image plane the markers of a person without "
          "depth are drawn on (with depth they are drawn where the joints are)",
          OUTPUTS, runtime=True, min=0.01, max=1000.0),
    Param("marker_lifetime", 0.5, "seconds RViz keeps a marker without update (0 = forever)",
          OUTPUTS, runtime=True, min=0.0, max=3600.0),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", OUTPUTS,
          min=0.1, max=60.0),
    Param("stale_timeout", 2.0, "seconds without frames before diagnostics report STALE", OUTPUTS,
          runtime=True, min=0.1, max=3600.0),
)
SPECS = {p.name: p for p in PARAMETERS}
assert len(SPECS) == len(PARAMETERS), "parameter declared twice"


def _replace(self, **changes):
    return dataclasses.replace(self, **changes)


NodeConfig = dataclasses.make_dataclass(
    "NodeConfig", [(p.name, p.type, dataclasses.field(default=p.default)) for p in PARAMETERS],
    frozen=True,
    namespace={"__doc__": "Typed parameter values; field names are the ROS parameter names.",
               "replace": _replace})
NodeConfig.__module__ = __name__


def pipeline_config(cfg: NodeConfig) -> PipelineConfig:
    """The runtime pipeline's settings: every PipelineConfig field is the parameter of
    the same name, except the smoothing filter's, which are grouped."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(PipelineConfig)
              if f.name != "smoothing_params"}
    return PipelineConfig(**values, smoothing_params=OneEuroParams(
        cfg.smoothing_min_cutoff, cfg.smoothing_beta, cfg.smoothing_d_cutoff))


def model_settings(cfg: NodeConfig) -> ModelSettings:
    """The network file (model_path, else model_preset's) and the engine it runs on."""
    return ModelSettings(path=cfg.model_path, preset=cfg.model_preset, backend=cfg.backend,
                         threads=cfg.threads, precision=cfg.precision)


def detector_settings(cfg: NodeConfig) -> DetectorSettings:
    """The built-in detector's settings from the detector_* parameters (and the engine's
    backend; it runs f32 whatever the pose network's precision, see DetectorSettings). MoveNet's boxes hug the keypoints: they are grown by
    JOINTS_BOX_PADDING, the context a followed person's crop gets, since the pipeline crops
    detector boxes as they are."""
    return DetectorSettings(kind=cfg.detector, model=cfg.detector_model, input_size=cfg.detector_input_size,
                            threshold=cfg.detector_threshold, threads=cfg.detector_threads,
                            backend=cfg.backend, box_scale=JOINTS_BOX_PADDING,
                            hog_scale=cfg.detector_scale, hog_threshold=cfg.detector_hog_threshold)


def depth_settings(cfg: NodeConfig):
    """The depth estimator's settings from the depth_* parameters; ValueError with the
    reason when they do not fit together (depth_min >= depth_max, more pixels than the
    window holds)."""
    import re

    from lapx_ros.runtime.depth import DepthSettings

    names = {"window": "depth_window", "min_depth": "depth_min", "max_depth": "depth_max",
             "surface_gap": "depth_surface_gap", "min_pixels": "depth_min_pixels",
             "max_behind": "depth_max_behind", "max_in_front": "depth_max_in_front"}
    try:
        return DepthSettings(**{field: getattr(cfg, name) for field, name in names.items()})
    except ValueError as exc:  # the reason in the parameters' names
        raise ValueError(re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: names[m.group(1)],
                                str(exc))) from None


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


def declare(node) -> NodeConfig:
    """Declare every parameter on ``node``; an invalid value from the parameter file is
    refused with an error in the log, and the default is used instead."""
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    values = {}
    for spec in SPECS.values():
        desc = descriptor(spec)
        try:
            writable = copy.copy(desc)
            writable.read_only = False
            writable.dynamic_typing = True  # an int for a double is coerced below, not refused
            value = node.declare_parameter(spec.name, spec.default, writable).value
            reason = check(spec.name, value)
            node.undeclare_parameter(spec.name)  # redeclared below, read-only if it must be
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            reason, value = f"{spec.name}: {exc}", spec.default
        if reason:
            node.get_logger().error(f"parameter refused: {reason}; using {spec.default!r}")
            value = spec.default
        value = coerce(spec.name, value)
        node.declare_parameter(spec.name, value, desc, ignore_override=True)
        values[spec.name] = value
    return NodeConfig(**values)


def descriptor(spec: Param):
    """The rcl_interfaces ParameterDescriptor advertised for ``spec``."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    desc = ParameterDescriptor(name=spec.name, type=types[spec.type], description=spec.description,
                               read_only=not spec.runtime)
    if spec.choices:
        desc.additional_constraints = "one of: " + ", ".join(map(str, spec.choices))
    if spec.type is int and (spec.min is not None or spec.max is not None):
        desc.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max),
                                           step=2 if spec.odd else 1)]
    elif spec.type is float and (spec.min is not None or spec.max is not None):
        desc.floating_point_range = [FloatingPointRange(from_value=float(spec.min),
                                                        to_value=float(spec.max), step=0.0)]
    return desc


# ------------------------------------------------------------ generated files
YAML_PATH = Path("config") / "lapx.yaml"
DOCS_PATH = Path("docs") / "node.md"
DOCS_BEGIN = "<!-- parameters: generated by python -m lapx_ros.ros.params --write -->"
DOCS_END = "<!-- parameters: end -->"


def _yaml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _allowed(spec: Param, separator: str = " | ") -> str:
    if spec.choices:
        return separator.join(map(str, spec.choices))
    if spec.min is not None:
        return f"{spec.min:g} .. {spec.max:g}" + (", odd" if spec.odd else "")
    return ""


def render_yaml() -> str:
    """config/lapx.yaml: every parameter with its default, grouped, described."""
    lines = [
        "# Parameters of the lapx_ros pose node, generated from lapx_ros/ros/params.py",
        "# (python -m lapx_ros.ros.params --write). Run with",
        "#   lapx-pose-node --ros-args --params-file config/lapx.yaml [-p name:=value ...]",
        "# or copy it and give the copy as params_file:=... to the launch files.",
        "# '/**' applies the values to the node whatever its namespace and name.",
        "# (runtime) parameters can be changed while the node runs; the others are read at start.",
        "/**:",
        "  ros__parameters:",
    ]
    group = None
    for spec in PARAMETERS:
        if spec.group != group:
            group = spec.group
            lines += ["", f"    # --- {group} ---"]
        text = ("(runtime) " if spec.runtime else "") + spec.description
        allowed = _allowed(spec)
        if allowed:
            text += f" [{allowed}]"
        lines += textwrap.wrap(text, 92, initial_indent="    # ", subsequent_indent="    #   ")
        lines.append(f"    {spec.name}: {_yaml_value(spec.default)}")
    return "\n".join(lines) + "\n"


def render_docs_table() -> str:
    """The Markdown table of docs/node.md."""
    rows = ["| parameter | default | allowed | runtime | what it does |", "|---|---|---|---|---|"]
    for spec in PARAMETERS:
        rows.append(f"| `{spec.name}` | `{_yaml_value(spec.default)}` | {_allowed(spec, ', ')} | "
                    f"{'yes' if spec.runtime else ''} | {spec.description.replace('|', '/')} |")
    return "\n".join(rows)


def docs_with_table(text: str) -> str:
    """``text`` (docs/node.md) with the generated table between its markers."""
    head, rest = text.split(DOCS_BEGIN, 1)
    _, tail = rest.split(DOCS_END, 1)
    return f"{head}{DOCS_BEGIN}\n{render_docs_table()}\n{DOCS_END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Print or write the files generated from the "
                                                 "parameter table (config/lapx.yaml, docs/node.md).")
    parser.add_argument("--write", action="store_true", help="rewrite both files in the repository")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(render_yaml())
        return 0
    (args.root / YAML_PATH).write_text(render_yaml())
    docs = args.root / DOCS_PATH
    docs.write_text(docs_with_table(docs.read_text()))
    print(f"wrote {YAML_PATH} and the table of {DOCS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
