"""lapx-bag-poses: the pose node's work on a recorded bag, without DDS, into a new bag.

    lapx-bag-poses IN OUT [--params-file config/lapx.yaml] [-p name:=value ...] [--markers]

Robot teams record a camera once and test perception on it again and again. This runs
what the node does with each frame (``PoseNode._process``: stamp checks, decoding,
``PosePipeline``, depth, ``pose_array_msg``, markers) through the same plain objects,
configured from the same parameters file, on every frame of the bag's input topic, and
writes ``human_pose`` (and ``human_pose/markers`` with ``--markers``) with the source
frames' stamps and recording times. Nothing waits on a clock and no frame is skipped:
the result is what the node publishes when it keeps up with every frame (lapx-replay
--bag --rate answer). One difference by design: in mode detector the detector runs
inside the frame it was started on (the node runs it beside the stream, so its boxes
land a frame or more later there).

The output bag is written beside OUT under a hidden name and renamed when complete: a
bag that cannot be read to the end leaves nothing behind.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lapx_ros.ros import params
from lapx_ros.ros.bags import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    MARKERS,
    POSES,
    STORAGES,
    BagError,
    BagReader,
    BagWriter,
    frame_events,
)

PROG = "lapx-bag-poses"
DEFAULT_PARAMS_FILE = Path("config") / "lapx.yaml"
# Parameters rclpy declares on every node: valid in a parameters file, none of the pose
# pipeline's business.
RCLPY_PARAMETERS = re.compile(r"^(use_sim_time|start_type_description_service|qos_overrides\..*)$")


class ConfigError(ValueError):
    """A parameters file or override that cannot configure the pipeline."""


# ------------------------------------------------------------------------ parameters
def _node_key_pattern(key: str) -> re.Pattern:
    """A parameters file's node key (``/**``, ``/**/lapx_pose``, ``/robot/lapx_pose``,
    ``lapx_pose``) as a pattern over fully qualified node names: ``**`` any number
    of name tokens, ``*`` one."""
    key = key if key.startswith("/") else "/" + key
    parts = []
    for token in re.split(r"(\*\*|\*)", key):
        parts.append({"**": ".*", "*": "[^/]*"}.get(token, re.escape(token)))
    return re.compile("^" + "".join(parts) + "$")


def _flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for name, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def node_name(namespace: str) -> str:
    return namespace.rstrip("/") + "/" + params.NODE_NAME


def file_parameters(path: Path, namespace: str = "/") -> dict:
    """The parameters a parameters file gives the pose node in ``namespace``: every
    entry whose node key matches its name, wildcards first, the most specific last."""
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the parameters file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: not a ROS parameters file (no node names at the top)")
    fqn = node_name(namespace)
    matching = [key for key in document if _node_key_pattern(str(key)).match(fqn)]
    values: dict = {}
    for key in sorted(matching, key=lambda k: "*" not in str(k)):  # stable: file order otherwise
        entry = document[key]
        if not isinstance(entry, dict) or not isinstance(entry.get("ros__parameters"), dict):
            raise ConfigError(f"{path}: entry {key!r} has no ros__parameters mapping")
        values.update(_flatten(entry["ros__parameters"]))
    return values


def parse_override(text: str) -> tuple[str, object]:
    """``name:=value`` with the value read as YAML, as ``--ros-args -p`` reads it."""
    import yaml

    name, sep, value = text.partition(":=")
    if not sep or not name:
        raise ConfigError(f"-p {text!r}: expected name:=value")
    try:
        return name, yaml.safe_load(value) if value != "" else ""
    except yaml.YAMLError:
        return name, value


def load_config(params_file: Path | None, overrides=(), namespace: str = "/",
                warn=lambda text: None) -> params.NodeConfig:
    """NodeConfig from the parameters file and ``-p`` overrides, checked by the node's
    own rules (params.check). A value the node would refuse is an error here: a
    regression run must not quietly run on a default."""
    values = file_parameters(params_file, namespace) if params_file else {}
    for text in overrides:
        name, value = parse_override(text)
        values[name] = value
    problems, chosen = [], {}
    for name, value in values.items():
        if name not in params.SPECS:
            if not RCLPY_PARAMETERS.match(name):
                warn(f"parameter {name} is not one of the pose node's: ignored")
            continue
        reason = params.check(name, value)
        if reason:
            problems.append(reason)
        else:
            chosen[name] = params.coerce(name, value)
    if problems:
        raise ConfigError("parameter(s) refused: " + "; ".join(problems))
    config = params.NodeConfig(**chosen)
    try:
        params.depth_settings(config)
    except ValueError as exc:
        raise ConfigError(f"depth settings do not fit together: {exc}") from None
    return config


def resolve_topic(namespace: str, name: str) -> str:
    """A topic name as the node in ``namespace`` resolves it (relative names follow it)."""
    if name.startswith("/"):
        return name
    return namespace.rstrip("/") + "/" + name


# ------------------------------------------------------------------------- the work
@dataclass
class FrameResult:
    """What one frame gave: the messages to write, or why it was dropped."""

    poses: object = None  # HumanPoseArray
    markers: object = None  # MarkerArray
    dropped: str = ""  # reason, when the frame gave nothing
    people: int = 0
    ids: tuple = ()
    with_depth: bool | None = None  # None without a depth topic
    depth_problem: str = ""
    seconds: float = 0.0


class OfflinePoser:
    """The node's per-frame work on messages that come from a bag instead of DDS.

    The steps and their order are PoseNode._process's, calling the same objects
    (FrameGate, the image conversions, PosePipeline, DepthStream, pose_array_msg,
    MarkerBuilder); the node's clock is the frame's recording time, as the node's is
    with use_sim_time and lapx-replay's /clock."""

    def __init__(self, config: params.NodeConfig, markers: bool = False, log=lambda text: None):
        from lapx_ros.ros.convert import depth_from_message
        from lapx_ros.ros.markers import MarkerBuilder
        from lapx_ros.runtime.depth import DepthStream, torso_joints
        from lapx_ros.runtime.frames import FrameGate
        from lapx_ros.runtime.loader import load_pipeline
        from lapx_ros.runtime.modes import MODES, mode_class

        cfg = self.config = config
        if mode_class(cfg.mode).takes_boxes:
            offline = " or ".join(name for name, mode in MODES.items() if not mode.takes_boxes)
            raise ConfigError(f"mode {cfg.mode} is not supported offline (person boxes from another node "
                              f"are not read from bags yet): use mode {offline}")
        loaded = load_pipeline(params.model_settings(cfg), params.pipeline_config(cfg),
                               params.detector_settings(cfg), synchronous_detector=True)
        for text in loaded.notes:
            log(text)
        self.status = loaded.status
        if loaded.pipeline is None:
            raise ConfigError(f"cannot load the model: {loaded.status.problem}")
        if loaded.status.detector_problem:
            log(f"{loaded.status.detector_problem}; mode detector falls back to {loaded.status.detector_fallback}")
        self.pipeline = loaded.pipeline
        self.depth = None
        if cfg.depth_topic:
            self.depth = DepthStream(params.depth_settings(cfg),
                                     torso_joints(self.pipeline.estimator.metadata.joint_names),
                                     depth_from_message, max_pixels=cfg.max_image_pixels)
        self.gate = FrameGate()
        self.marker_builder = MarkerBuilder() if markers and cfg.publish_markers else None
        self.colour_camera = None

    def colour_info(self, msg) -> None:
        from lapx_ros.runtime.camera import PinholeCamera

        self.colour_camera = PinholeCamera.from_camera_info(msg)

    def depth_image(self, msg) -> None:
        from lapx_ros.ros.messages import stamp_seconds

        if self.depth is not None:
            self.depth.add(stamp_seconds(msg.header.stamp), msg)

    def depth_info(self, msg) -> None:
        from lapx_ros.runtime.camera import PinholeCamera

        if self.depth is not None:
            self.depth.set_camera(PinholeCamera.from_camera_info(msg))

    def frame(self, msg, compressed: bool, now: float) -> FrameResult:
        """The messages of one frame received at ``now`` (seconds, recording time)."""
        from lapx_ros.ros.convert import ImageConversionError, compressed_to_bgr, image_to_bgr
        from lapx_ros.ros.markers import drawing_camera
        from lapx_ros.ros.messages import finite_poses, locate_in_depth, pose_array_msg, stamp_seconds
        from lapx_ros.runtime.engine import InferenceError

        cfg = self.config
        started = time.perf_counter()
        stamp = stamp_seconds(msg.header.stamp)
        frame_id = cfg.frame_id or msg.header.frame_id
        if not frame_id:
            return FrameResult(dropped="empty frame_id (set the frame_id parameter to name the camera frame)")
        reason, restarted = self.gate.check(stamp, now, cfg.max_stamp_future, cfg.stale_timeout)
        if reason:
            return FrameResult(dropped=reason)
        if restarted:
            self.pipeline.reset()
        try:
            image = (compressed_to_bgr(msg, cfg.max_image_pixels) if compressed
                     else image_to_bgr(msg, cfg.max_image_pixels))
        except ImageConversionError as exc:
            return FrameResult(dropped=str(exc))
        try:
            poses = self.pipeline.process(image, stamp)
        except InferenceError as exc:
            return FrameResult(dropped=f"inference failed: {exc}")
        if not finite_poses(poses):
            return FrameResult(dropped="inference failed: non-finite keypoints")
        header = copy.copy(msg.header)
        header.frame_id = frame_id
        height, width = image.shape[:2]
        meta = self.pipeline.estimator.metadata
        body, depth_problem = None, ""
        if self.depth is not None:
            body, depth_problem = locate_in_depth(
                self.depth, stamp, poses, meta.joint_names, cfg.keypoint_threshold, self.colour_camera,
                (width, height), cfg.depth_stamp_tolerance, 0.0)
        out = FrameResult(people=len(poses), ids=tuple(int(p.track_id) for p in poses),
                          with_depth=None if self.depth is None else body is not None,
                          depth_problem=depth_problem or "")
        out.poses = pose_array_msg(header, poses, width, height, meta.joint_names, meta.skeleton, body)
        if self.marker_builder is not None:
            out.markers = self.marker_builder.build(
                header, poses, meta.skeleton, drawing_camera(self.colour_camera, width, height),
                cfg.marker_depth, cfg.keypoint_threshold, cfg.marker_lifetime,
                None if body is None else body.positions)
        out.seconds = time.perf_counter() - started
        return out


# --------------------------------------------------------------------------- summary
@dataclass
class Summary:
    input_topic: str = ""
    frames: int = 0
    written: int = 0
    frames_with_people: int = 0
    poses: int = 0
    most_people: int = 0
    ids: set = field(default_factory=set)
    frames_with_depth: int = 0
    frames_without_depth: int = 0
    frames_depth_too_late: int = 0  # of those without: their depth image was recorded after the next frame
    no_depth: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    frame_seconds: list = field(default_factory=list)
    load_seconds: float = 0.0
    run_seconds: float = 0.0
    engine: str = ""
    model: str = ""
    mode: str = ""
    output: str = ""
    storage: str = ""

    def add(self, result: FrameResult) -> None:
        from lapx_ros.runtime.frames import reason_kind

        self.frames += 1
        if result.dropped:
            kind = reason_kind(result.dropped)
            self.dropped[kind] = self.dropped.get(kind, 0) + 1
            return
        self.frame_seconds.append(result.seconds)
        self.poses += result.people
        self.frames_with_people += result.people > 0
        self.most_people = max(self.most_people, result.people)
        self.ids.update(i for i in result.ids if i)
        if result.with_depth is True:
            self.frames_with_depth += 1
        elif result.with_depth is False:
            self.frames_without_depth += 1
            kind = reason_kind(result.depth_problem)
            self.no_depth[kind] = self.no_depth.get(kind, 0) + 1

    def as_dict(self) -> dict:
        ms = np.asarray(self.frame_seconds) * 1000.0
        processed = len(self.frame_seconds)
        return {
            "input_topic": self.input_topic, "frames": self.frames, "processed": processed,
            "written": self.written, "dropped": self.dropped,
            "frames_with_people": self.frames_with_people, "poses": self.poses,
            "most_people": self.most_people, "ids": sorted(self.ids),
            "frames_with_depth": self.frames_with_depth, "frames_without_depth": self.frames_without_depth,
            "frames_depth_too_late": self.frames_depth_too_late, "no_depth": self.no_depth,
            "seconds": round(self.run_seconds, 3), "model_load_seconds": round(self.load_seconds, 3),
            "frames_per_second": round(self.frames / self.run_seconds, 2) if self.run_seconds > 0 else None,
            "frame_ms_p50": round(float(np.median(ms)), 2) if processed else None,
            "frame_ms_p95": round(float(np.percentile(ms, 95)), 2) if processed else None,
            "engine": self.engine, "model": self.model, "mode": self.mode,
            "output": self.output, "storage": self.storage,
        }

    def text(self) -> str:
        d = self.as_dict()
        ids = d["ids"]
        id_text = ", ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else "")
        lines = [
            f"{PROG}: {d['frames']} frames of {d['input_topic']} -> {d['written']} human_pose messages "
            f"in {d['output']} ({d['storage']})",
            f"  people: {d['poses']} poses in {d['frames_with_people']} frames (at most {d['most_people']} "
            f"in one), {len(ids)} ids{': ' + id_text if ids else ''}",
        ]
        if d["frames_with_depth"] or d["frames_without_depth"]:
            reasons = "; ".join([f"{k}: {n}" for k, n in d["no_depth"].items()]
                                + ([f"depth recorded too late: {d['frames_depth_too_late']}"]
                                   if d["frames_depth_too_late"] else []))
            lines.append(f"  depth: {d['frames_with_depth']} frames with 3D, {d['frames_without_depth']} "
                         f"without{' (' + reasons + ')' if reasons else ''}")
        dropped = sum(d["dropped"].values())
        lines.append(f"  dropped: {dropped}" + (" (" + "; ".join(f"{k}: {n}" for k, n in d["dropped"].items())
                                                  + ")" if dropped else ""))
        rate = f"{d['frames_per_second']:.1f} frames/s" if d["frames_per_second"] else "-"
        per_frame = (f"; per frame p50 {d['frame_ms_p50']:.1f} ms, p95 {d['frame_ms_p95']:.1f} ms"
                     if d["frame_ms_p50"] is not None else "")
        lines.append(f"  time: {d['seconds']:.1f} s ({rate}{per_frame}); model loaded in "
                     f"{d['model_load_seconds']:.1f} s")
        lines.append(f"  model: {d['model']} on {d['engine']}, mode {d['mode']}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------ main
@dataclass(frozen=True)
class InputTopics:
    image: str
    compressed: bool
    colour_info: str
    depth: str = ""
    depth_info: str = ""


def input_topics_in_bag(config: params.NodeConfig, namespace: str, bag: BagReader) -> InputTopics:
    """The bag topics the node would subscribe to with ``config`` ("" for a CameraInfo or
    depth topic the bag lacks); BagError naming the topic (and the bag's image topics)
    when the frames are missing or of another type."""
    from lapx_ros.ros.messages import depth_topics, input_topics

    def of_type(topic: str, msgtype: str, role: str, setting: str) -> bool:
        """Whether the bag has ``topic``; BagError when it holds another type there."""
        found = bag.topics.get(topic)
        if found is not None and found.msgtype != msgtype:
            raise BagError(f"{bag.path}: {role} topic {topic} is {found.msgtype}, the node reads {msgtype} "
                           f"there ({setting})")
        return found is not None

    image, compressed, info = input_topics(config.input_topic, config.input_transport,
                                           config.camera_info_topic)
    image, info = resolve_topic(namespace, image), resolve_topic(namespace, info)
    setting = f"input_transport {config.input_transport!r}"
    if not of_type(image, COMPRESSED_IMAGE if compressed else IMAGE, "input", setting):
        images = [t for t in bag.topics.values() if t.msgtype in (IMAGE, COMPRESSED_IMAGE)]
        choices = "\n".join(f"  {t.name}  {t.msgtype}" for t in images) or "  (none)"
        raise BagError(f"{bag.path}: no topic {image} (input_topic {config.input_topic!r}, {setting}) in "
                       f"the bag; its image topics:\n{choices}\nchoose one with -p input_topic:=NAME (and "
                       f"-p input_transport:=compressed for a CompressedImage topic without /compressed)")
    colour_info = info if of_type(info, CAMERA_INFO, "camera_info", "camera_info_topic") else ""
    if not config.depth_topic:
        return InputTopics(image, compressed, colour_info)
    depth, depth_compressed, depth_info = depth_topics(config.depth_topic, config.depth_transport)
    depth, depth_info = resolve_topic(namespace, depth), resolve_topic(namespace, depth_info)
    has_depth = of_type(depth, COMPRESSED_IMAGE if depth_compressed else IMAGE, "depth",
                        f"depth_transport {config.depth_transport!r}")
    has_depth_info = of_type(depth_info, CAMERA_INFO, "depth camera_info", "beside depth_topic")
    return InputTopics(image, compressed, colour_info, depth if has_depth else "",
                       depth_info if has_depth_info else "")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="rosbag2 bag: a folder with metadata.yaml, or a .db3 / .mcap file")
    parser.add_argument("output", help="new bag folder to write (must not exist)")
    parser.add_argument("--params-file", type=Path, default=None,
                        help=f"the node's ROS parameters file (default: {DEFAULT_PARAMS_FILE} when it "
                             "exists, else the node's defaults)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="override a parameter, as --ros-args -p does (repeatable)")
    parser.add_argument("--namespace", default="/",
                        help="the node's namespace: relative topic names and the parameters file's "
                             "node keys resolve in it (default /)")
    parser.add_argument("--markers", action="store_true", help="also write human_pose/markers")
    parser.add_argument("--storage", choices=STORAGES, default=None,
                        help="storage of the output bag (default: the input's)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line too")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.namespace.startswith("/"):
        parser.error("--namespace must be absolute (start with /)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    def say(text: str) -> None:
        print(f"{PROG}: {text}", file=sys.stderr, flush=True)

    params_file = args.params_file
    if params_file is None and DEFAULT_PARAMS_FILE.is_file():
        params_file = DEFAULT_PARAMS_FILE
    try:
        config = load_config(params_file, args.param, args.namespace, warn=say)
        if Path(args.output).exists():
            raise BagError(f"{args.output} exists already: remove it or choose another name")
        with BagReader(args.input) as bag:
            for note in bag.notes:
                say(note)
            topics = input_topics_in_bag(config, args.namespace, bag)
            return _run(args, config, bag, topics, say)
    except (ConfigError, BagError) as exc:
        say(str(exc))
        return 2
    except KeyboardInterrupt:
        say("interrupted: nothing written")
        return 130


def _run(args, config, bag: BagReader, topics: InputTopics, say) -> int:
    from tqdm import tqdm

    summary = Summary(input_topic=topics.image, mode=config.mode, output=str(args.output),
                      storage=args.storage or bag.storage)
    if config.depth_topic and not topics.depth:
        say(f"depth_topic {config.depth_topic!r}: not in the bag, poses without 3D")
    loading = time.perf_counter()
    try:
        poser = OfflinePoser(config, markers=args.markers, log=say)
    except ValueError as exc:  # a layout without torso joints, with depth
        raise ConfigError(f"cannot set up the pipeline: {exc}") from None
    summary.load_seconds = time.perf_counter() - loading
    summary.engine = poser.status.engine + (f"; detector {poser.status.detector}" if poser.status.detector else "")
    summary.model = poser.status.path
    out_topic = resolve_topic(args.namespace, "human_pose")
    marker_topic = resolve_topic(args.namespace, "human_pose/markers")
    readers = {topics.colour_info: poser.colour_info, topics.depth: poser.depth_image,
               topics.depth_info: poser.depth_info}
    readers.pop("", None)
    read = [topics.image, *readers]
    started = time.perf_counter()
    with BagWriter(args.output, summary.storage) as writer, \
            tqdm(total=bag.topics[topics.image].count, unit="frame", disable=True if args.quiet else None,
                 file=sys.stderr, desc=PROG) as progress:
        messages = bag.messages(read)
        for kind, item in frame_events(messages, lambda m: m.topic == topics.image):
            if kind == "message":
                if item.topic in readers:
                    readers[item.topic](item.msg)
                continue
            result = poser.frame(item.msg, topics.compressed, item.log_ns * 1e-9)
            summary.add(result)
            if result.poses is not None:
                writer.write(out_topic, POSES, item.log_ns, result.poses)
                summary.written += 1
            if result.markers is not None:
                writer.write(marker_topic, MARKERS, item.log_ns, result.markers)
            progress.update(1)
        summary.run_seconds = time.perf_counter() - started
        if poser.depth is not None:
            summary.frames_depth_too_late = poser.depth.report().frames_too_late
        writer.commit()
    print(summary.text(), flush=True)
    if args.json:
        print(json.dumps(summary.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
