"""The pose node: a thin managed (lifecycle) node around ``PosePipeline``.

It wires parameters, topics and timers to plain objects: frames go to a
``NewestFrameWorker`` (newest frame wins, the rest are counted stale), the input's QoS
follows the camera publisher (``health.choose_reliability``), sequence numbers reveal
frames lost in transport (``SequenceGaps``), and ``health.input_problem`` turns the
counters into diagnostics a user can act on. Bad input is dropped with a rate-limited
warning and counted in /diagnostics; nothing a camera sends can stop the worker.

With ``depth_topic`` set, depth messages go undecoded into a ``DepthStream``, which
pairs each processed frame with the depth image of its stamp once its poses are known
(a bounded wait), and turns joints into metres; bad depth costs a frame its 3D only.
"""
from __future__ import annotations

import copy
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from lapx_ros.msg import HumanPoseArray
from lapx_ros.ros import params
from lapx_ros.ros.convert import ImageConversionError, compressed_to_bgr, image_to_bgr, to_image_msg
from lapx_ros.ros.markers import MarkerBuilder, drawing_camera
from lapx_ros.ros.messages import (
    boxes_from_msg,
    boxes_message_type,
    depth_topics,
    finite_poses,
    input_topics,
    locate_in_depth,
    pose_array_msg,
    stamp_seconds,
)
from lapx_ros.runtime.detector import BackgroundDetector, create_person_detector, update_person_detector
from lapx_ros.runtime.drawing import draw_poses
from lapx_ros.runtime.engine import InferenceError, ModelError, create_engine, default_model_path
from lapx_ros.runtime import health
from lapx_ros.runtime.camera import PinholeCamera
from lapx_ros.runtime.depth import DepthSettings, DepthStream, torso_joints
from lapx_ros.runtime.estimator import PoseEstimator, PosePipeline, sanitize_boxes
from lapx_ros.runtime.frames import (
    BoxBuffer,
    DuplicateFilter,
    FrameGate,
    NewestFrameWorker,
    PipelineStats,
    SequenceGaps,
)

WARN_PERIOD = 5.0  # seconds between repeats of the same kind of warning
PUBLISHER_CHECK_PERIOD = 0.25  # seconds between looks at the camera's publishers (QoS auto)
HANDOVER_GRACE = 0.5  # seconds both input subscriptions overlap once the new one is matched
HANDOVER_TIMEOUT = 2.0  # seconds the previous input subscription may wait for the new one's match
RELIABILITY = {"reliable": QoSReliabilityPolicy.RELIABLE, "best_effort": QoSReliabilityPolicy.BEST_EFFORT}


class WarningThrottle:
    """Logs each kind of warning at most once per period, with the count suppressed."""

    def __init__(self, logger, period: float = WARN_PERIOD):
        self._logger = logger
        self._period = period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) < self._period:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        more = self._suppressed.pop(kind, 0)
        self._last[kind] = now
        self._logger.warning(text + (f" (and {more} more since last report)" if more else ""))


class PoseNode(LifecycleNode):
    """Camera frames in; /human_pose, markers, annotated image and diagnostics out."""

    def __init__(self, **kwargs):
        super().__init__(params.NODE_NAME, **kwargs)
        self.config = self._declare_parameters()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.stats = PipelineStats()
        self.gate = FrameGate()
        self.box_buffer = BoxBuffer()
        self.markers = MarkerBuilder()
        self.throttle = WarningThrottle(self.get_logger())
        self.pipeline: PosePipeline | None = None
        self.engine_description = ""
        self.model_path = ""
        self.model_problem = ""
        self.detector_description = ""  # mode detector: what runs (MoveNet, or HOG)
        self.detector_problem = ""  # why MoveNet was asked for and HOG runs instead
        self.active = False
        self._colour_camera: PinholeCamera | None = None  # from the colour CameraInfo
        self.depth: DepthStream | None = None  # while configured with a depth_topic
        self._depth_sub = None
        self.depth_reliability = ""
        self._depth_last_reason = ""
        self._prev_depth = (0, 0)  # frames with and without depth at the last diagnostics
        self._subscriptions_made = []
        self._image_sub = None
        self._retiring_sub = None  # (subscription, since) while the input QoS changes
        self._new_sub_matched = False
        self._recent_frames = DuplicateFilter()
        self.input_reliability = ""  # of the image subscription while active
        self.gaps = SequenceGaps()
        self._middleware_lost = 0  # frames the middleware reported lost (message_lost events)
        self._publishers_made = []
        self.worker = NewestFrameWorker(self._process, self._on_worker_error, self.stats)
        self._prev_invalid = 0
        self._prev_received = 0
        self._prev_lost = 0
        self._unmatched_warned = 0
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.config.diagnostics_period, self._publish_diagnostics)
        self._single_publisher = False
        self.create_timer(PUBLISHER_CHECK_PERIOD, self._watch_publishers)
        self._start_timer = None
        if self.config.autostart:
            self._start_timer = self.create_timer(self.config.retry_period, self._autostart)
            self._autostart()

    # ---------------------------------------------------------------- parameters
    def _declare_parameters(self) -> params.NodeConfig:
        """Declare every parameter; an invalid value from the file keeps the default."""
        values = {}
        for spec in params.SPECS.values():
            desc = params.descriptor(spec)
            try:
                writable = copy.copy(desc)
                writable.read_only = False
                writable.dynamic_typing = True  # an int for a double is coerced below, not refused
                value = self.declare_parameter(spec.name, spec.default, writable).value
                reason = params.check(spec.name, value)
                self.undeclare_parameter(spec.name)  # redeclared below, read-only if it must be
            except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
                reason, value = f"{spec.name}: {exc}", spec.default
            if reason:
                self.get_logger().error(f"parameter refused: {reason}; using {spec.default!r}")
                value = spec.default
            value = params.coerce(spec.name, value)
            self.declare_parameter(spec.name, value, desc, ignore_override=True)
            values[spec.name] = value
        return params.NodeConfig(**values)

    def _on_set_parameters(self, changed) -> SetParametersResult:
        """Checks and applies changes of this node's parameters; the ones rclpy declares
        itself (use_sim_time, ...) are left to rclpy."""
        updates = {}
        for p in changed:
            if p.name not in params.SPECS:
                continue
            reason = params.check_runtime(p.name, p.value)
            if reason:
                self.get_logger().warning(f"parameter change refused: {reason}")
                return SetParametersResult(successful=False, reason=reason)
            updates[p.name] = params.coerce(p.name, p.value)
        if not updates:
            return SetParametersResult(successful=True)
        config = self.config.replace(**updates)
        if any(name.startswith("depth_") for name in updates):
            try:
                settings = params.depth_settings(config)
            except ValueError as exc:
                reason = f"depth settings do not fit together: {exc}"
                self.get_logger().warning(f"parameter change refused: {reason}")
                return SetParametersResult(successful=False, reason=reason)
            if self.depth is not None:
                self.depth.settings = settings
        self.config = config
        if self.depth is not None:
            self.depth.max_pixels = config.max_image_pixels
        if self.pipeline is not None:
            self.pipeline.config = params.pipeline_config(self.config)
            self._configure_detector()
        self.get_logger().info(f"parameters changed: {updates}")
        return SetParametersResult(successful=True)

    def _configure_detector(self) -> None:
        if self.pipeline.detector is not None:
            update_person_detector(self.pipeline.detector.detect, params.detector_settings(self.config))

    def _make_detector(self) -> BackgroundDetector:
        """The built-in detector on a thread of its own. A MoveNet file that cannot be used
        is an error in the log and the diagnostics, and HOG runs instead: the node stays up."""
        notes: list[str] = []
        detect, problem = create_person_detector(params.detector_settings(self.config), log=notes.append)
        for text in notes:
            self.get_logger().warning(text)
        self.detector_problem = problem
        self.detector_description = detect.description
        if problem:
            self.get_logger().error(f"{problem}; mode detector falls back to OpenCV HOG, which finds "
                                    "upright pedestrians only")
        self.get_logger().info(f"detector: {detect.description}")
        return BackgroundDetector(detect)

    # ----------------------------------------------------------------- lifecycle
    def _autostart(self) -> None:
        """Configure and activate; on failure the timer tries again every retry_period."""
        if not self.pipeline and self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return
        if not self.active and self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            return
        self._start_timer.cancel()

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        cfg = self.config
        path = cfg.model_path or default_model_path(cfg.model_preset)
        fallbacks: list[str] = []  # logged with the outcome, so retries on one problem stay quiet
        try:
            engine = create_engine(path or f"(no {cfg.model_preset} model file found in models/)", cfg.backend,
                                   cfg.threads, cfg.precision, log=fallbacks.append)
        except (ModelError, ValueError) as exc:
            problem = str(exc)
            if problem != self.model_problem:
                for text in fallbacks:
                    self.get_logger().warning(text)
                self.get_logger().error(f"cannot configure: {problem}")
            self.model_problem = problem
            return TransitionCallbackReturn.FAILURE
        for text in fallbacks:
            self.get_logger().warning(text)
        self.model_path, self.model_problem = path, ""
        self.engine_description = engine.description
        meta = engine.metadata
        self.get_logger().info(
            f"model {path}: {meta.layout_name} {meta.num_joints} joints, input "
            f"{meta.input_width}x{meta.input_height}; backend {engine.description}")
        detector = self._make_detector() if cfg.mode == "detector" else None
        self.pipeline = PosePipeline(PoseEstimator(engine), params.pipeline_config(cfg), detector)
        self.pipeline.newer_frame_waiting = self.worker.has_waiting
        self.depth = self._make_depth_stream(meta.joint_names) if cfg.depth_topic else None
        reliable = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
        self._pose_pub = self.create_lifecycle_publisher(HumanPoseArray, "human_pose", reliable)
        self._marker_pub = self.create_lifecycle_publisher(MarkerArray, "human_pose/markers", reliable)
        # Reliable depth 1: RViz (reliable by default) can see it, and no backlog builds.
        self._image_pub = self.create_lifecycle_publisher(
            Image, "human_pose/image", QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE))
        self._publishers_made = [self._pose_pub, self._marker_pub, self._image_pub]
        return TransitionCallbackReturn.SUCCESS

    def _make_depth_stream(self, joint_names) -> DepthStream | None:
        try:
            torso = torso_joints(joint_names)
        except ValueError as exc:
            self.get_logger().error(f"depth_topic ignored: {exc}")
            return None
        try:
            settings = params.depth_settings(self.config)
        except ValueError as exc:
            self.get_logger().error(f"depth settings refused: {exc}; using the defaults")
            settings = DepthSettings()
        self._prev_depth = (0, 0)
        return DepthStream(settings, torso, max_pixels=self.config.max_image_pixels)

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.gate.forget()
        self.worker.start()
        self._subscribe()
        self.active = True
        topic = self.resolve_topic_name(self._input_topic_name())
        depth = ""
        if self.depth is not None:
            depth = (f", depth from {self.resolve_topic_name(self._depth_topic_name())} "
                     f"({self.depth_reliability})")
        self.get_logger().info(f"active: {self.config.mode} mode on {topic} "
                               f"({self.input_reliability} input, qos_reliability "
                               f"{self.config.qos_reliability}){depth}")
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self._unsubscribe()
        self.worker.stop()
        self._marker_pub.publish(self.markers.clear(HumanPoseArray().header))
        self.pipeline.reset()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        for pub in self._publishers_made:
            self.destroy_lifecycle_publisher(pub)
        self._publishers_made = []
        self.pipeline = None
        self.depth = None
        self.detector_description = self.detector_problem = ""
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self.worker.stop()
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------- inputs
    def _input_topic_name(self) -> str:
        return input_topics(self.config.input_topic, self.config.input_transport)[0]

    def _depth_topic_name(self) -> str:
        return depth_topics(self.config.depth_topic, self.config.depth_transport)[0]

    def _input_publishers(self, topic: str | None = None) -> list[health.Publisher]:
        topic = self._input_topic_name() if topic is None else topic
        infos = self.get_publishers_info_by_topic(self.resolve_topic_name(topic))
        return [health.Publisher(i.topic_type, i.qos_profile.reliability == QoSReliabilityPolicy.RELIABLE)
                for i in infos]

    def _image_qos(self, reliability: str) -> QoSProfile:
        """Keep-last ``qos_depth`` (the worker takes only the newest frame anyway), volatile."""
        return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=self.config.qos_depth,
                          reliability=RELIABILITY[reliability],
                          durability=qos_profile_sensor_data.durability)

    def _subscribe_image(self, reliability: str) -> None:
        compressed = self.config.input_transport == "compressed"
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos,
                                            message_lost=self._on_message_lost,
                                            matched=self._on_image_matched)
        self._image_sub = self.create_subscription(
            CompressedImage if compressed else Image, self._input_topic_name(),
            lambda msg, info: self._on_frame(msg, info, compressed),
            self._image_qos(reliability), event_callbacks=events)
        self.input_reliability = reliability
        self.gaps.forget()

    def _subscribe_depth(self, reliability: str) -> None:
        """The depth image with the colour input's QoS rules (keep last qos_depth; the
        reliability its publishers offer under qos_reliability auto)."""
        topic, compressed, _ = depth_topics(self.config.depth_topic, self.config.depth_transport)
        self._depth_sub = self.create_subscription(
            CompressedImage if compressed else Image, topic, self._on_depth,
            self._image_qos(reliability))
        self.depth_reliability = reliability

    def _subscribe(self) -> None:
        cfg = self.config
        publishers = self._input_publishers()
        self._single_publisher = len(publishers) == 1
        self._subscribe_image(health.choose_reliability(cfg.qos_reliability, publishers))
        info_topic = input_topics(cfg.input_topic, cfg.input_transport, cfg.camera_info_topic)[2]
        self._subscriptions_made.append(self.create_subscription(
            CameraInfo, info_topic, self._on_camera_info, self._image_qos("best_effort")))
        if self.depth is not None:
            self._subscribe_depth(health.choose_reliability(
                cfg.qos_reliability, self._input_publishers(self._depth_topic_name())))
            _, _, depth_info = depth_topics(cfg.depth_topic, cfg.depth_transport)
            self._subscriptions_made.append(self.create_subscription(
                CameraInfo, depth_info, self._on_depth_camera_info, self._image_qos("best_effort")))
        if cfg.mode == "boxes":
            box_type, box_type_name = boxes_message_type()
            self.get_logger().info(f"person boxes: {box_type_name} on {cfg.boxes_topic}")
            self._subscriptions_made.append(self.create_subscription(
                box_type, cfg.boxes_topic, self._on_boxes, 10))

    def _unsubscribe(self) -> None:
        self._retire_image_sub()
        for sub in self._subscriptions_made + [self._image_sub, self._depth_sub]:
            if sub is not None:
                self.destroy_subscription(sub)
        self._subscriptions_made, self._image_sub, self._depth_sub = [], None, None
        self.input_reliability = self.depth_reliability = ""

    def _watch_publishers(self) -> None:
        """Counts the camera's publishers (sequence gaps mean something only with one) and,
        with qos_reliability auto, subscribes again when their reliability changed (a
        reliable camera appeared, or a best-effort one joined)."""
        if not self.active or self._image_sub is None:
            return
        self._retire_image_sub(older_than=HANDOVER_GRACE if self._new_sub_matched else HANDOVER_TIMEOUT)
        if self._depth_sub is not None:
            wanted = health.choose_reliability(self.config.qos_reliability,
                                               self._input_publishers(self._depth_topic_name()))
            if wanted != self.depth_reliability:
                self.get_logger().info(f"depth QoS follows the publishers of {self._depth_topic_name()}: "
                                       f"{self.depth_reliability} -> {wanted}")
                self.destroy_subscription(self._depth_sub)
                self._subscribe_depth(wanted)
        publishers = self._input_publishers()
        self._single_publisher = len(publishers) == 1
        if not publishers:
            return  # nothing to follow (the graph may also be momentarily empty): keep as is
        wanted = health.choose_reliability(self.config.qos_reliability, publishers)
        if wanted == self.input_reliability:
            return
        self.get_logger().info(f"input QoS follows the publishers of {self._input_topic_name()}: "
                               f"{self.input_reliability} -> {wanted}")
        # The old subscription keeps delivering until the new one is matched, so that no
        # frame is lost in the handover (the duplicates meanwhile are recognised).
        self._retire_image_sub()
        self._retiring_sub = (self._image_sub, time.monotonic())
        self._new_sub_matched = False
        self._subscribe_image(wanted)

    def _retire_image_sub(self, older_than: float = 0.0) -> None:
        """Destroy the subscription being handed over from (after ``older_than`` s)."""
        if self._retiring_sub is None:
            return
        sub, since = self._retiring_sub
        if time.monotonic() - since >= older_than:
            self.destroy_subscription(sub)
            self._retiring_sub = None

    def _on_image_matched(self, event) -> None:
        # The writer may see the new reader a moment after the reader saw it: the old
        # subscription goes at the next look at the publishers after HANDOVER_GRACE.
        self._new_sub_matched = self._new_sub_matched or event.current_count > 0

    def _on_incompatible_qos(self, event) -> None:
        ours = self.input_reliability
        self.throttle.warn("qos", f"a publisher on {self._input_topic_name()} has QoS incompatible "
                                  f"with this node's ({ours}, policy {event.last_policy_kind}); "
                                  "its frames cannot arrive. Fix: set qos_reliability: auto")

    def _on_message_lost(self, event) -> None:
        self._middleware_lost += event.total_count_change

    def _on_frame(self, msg, info, compressed: bool) -> None:
        stamp = msg.header.stamp
        if self._recent_frames.seen((info["publication_sequence_number"], stamp.sec, stamp.nanosec)):
            return  # the same frame through both subscriptions during a QoS handover
        if self._single_publisher:
            self.gaps.add(info["publication_sequence_number"])
        else:
            self.gaps.forget()  # numbers of several publishers interleave
        self.worker.put((msg, compressed))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._colour_camera = PinholeCamera.from_camera_info(msg)

    def _on_depth(self, msg) -> None:
        depth = self.depth
        if depth is not None:
            depth.add(stamp_seconds(msg.header.stamp), msg)

    def _on_depth_camera_info(self, msg: CameraInfo) -> None:
        depth = self.depth
        if depth is not None:
            depth.set_camera(PinholeCamera.from_camera_info(msg))

    def _on_boxes(self, msg) -> None:
        boxes, scores = boxes_from_msg(msg)
        self.box_buffer.add(stamp_seconds(msg.header.stamp), boxes, scores)

    # ------------------------------------------------------------------- worker
    def stop_worker(self) -> None:
        self.worker.stop()

    def _on_worker_error(self, exc: Exception) -> None:
        self.throttle.warn("exception", f"frame failed: {type(exc).__name__}: {exc}")

    def _drop(self, reason: str) -> None:
        """Count the frame and warn, rate-limited per kind of problem (so one kind cannot
        hide another)."""
        kind = self.stats.invalid(reason)
        self.throttle.warn(f"drop: {kind}", f"dropped frame: {reason}")

    def _process(self, item) -> None:
        msg, compressed = item
        cfg = self.config
        started = time.monotonic()
        stamp = stamp_seconds(msg.header.stamp)
        frame_id = cfg.frame_id or msg.header.frame_id
        if not frame_id:
            return self._drop("empty frame_id (set the frame_id parameter to name the camera frame)")
        reason, restarted = self.gate.check(stamp, self._now(), cfg.max_stamp_future, cfg.stale_timeout)
        if reason:
            return self._drop(reason)
        if restarted:
            self.get_logger().info("input restarted (stamps jumped back or a long gap): tracking reset")
            self.pipeline.reset()
            self.box_buffer.restart(stamp)
        try:
            frame = (compressed_to_bgr(msg, cfg.max_image_pixels) if compressed
                     else image_to_bgr(msg, cfg.max_image_pixels))
        except ImageConversionError as exc:
            return self._drop(str(exc))
        boxes = scores = None
        if cfg.mode == "boxes":
            boxes, scores = self._boxes_for(stamp, frame.shape[1], frame.shape[0])
        try:
            poses = self.pipeline.process(frame, stamp, boxes, scores)
        except InferenceError as exc:
            self.stats.error(str(exc))
            self.throttle.warn("inference", f"no poses for this frame: {exc}")
            return
        if not finite_poses(poses):
            self.stats.error("non-finite keypoints")
            return
        header = copy.copy(msg.header)
        header.frame_id = frame_id
        height, width = frame.shape[:2]
        meta = self.pipeline.estimator.metadata
        body = self._locate_depth(stamp, poses, width, height)
        self._pose_pub.publish(pose_array_msg(header, poses, width, height, meta.joint_names,
                                              meta.skeleton, body))
        if cfg.publish_markers and self._marker_pub.get_subscription_count() > 0:
            self._marker_pub.publish(self.markers.build(
                header, poses, meta.skeleton, self._camera_for(width, height), cfg.marker_depth,
                cfg.keypoint_threshold, cfg.marker_lifetime,
                None if body is None else body.positions))
        if self._image_pub.get_subscription_count() > 0:
            draw_poses(frame, poses, meta.skeleton, cfg.keypoint_threshold)
            self._image_pub.publish(to_image_msg(frame, "bgr8", header))
        self.stats.processed(self._now() - stamp, time.monotonic() - started, len(poses))

    def _boxes_for(self, stamp: float, width: int, height: int):
        cfg = self.config
        found = self.box_buffer.match(stamp, cfg.boxes_stamp_tolerance, cfg.boxes_wait)
        unmatched = self.box_buffer.unmatched
        if unmatched > self._unmatched_warned:
            self._unmatched_warned = unmatched
            self.throttle.warn("boxes_unmatched", (
                f"{unmatched} person box message(s) so far matched no frame: their stamps must be "
                f"their image's (within boxes_stamp_tolerance, {cfg.boxes_stamp_tolerance} s)"))
        if found is None:
            return None, None  # no boxes for this frame: follow the people already seen
        boxes, scores, dropped = sanitize_boxes(found[0], found[1], width, height)
        if dropped:
            self.stats.invalid_boxes(dropped)
            self.throttle.warn("boxes", f"ignored {dropped} person box(es): NaN, degenerate "
                                        "or outside the image")
        return boxes, scores

    def _locate_depth(self, stamp: float, poses, width: int, height: int):
        """The frame's people in metres (BodyDepth), or None without depth (warned once
        per kind of reason; the poses go out all the same)."""
        depth = self.depth
        if depth is None:
            return None
        cfg = self.config
        body, reason = locate_in_depth(depth, stamp, poses, self.pipeline.estimator.metadata.joint_names,
                                       cfg.keypoint_threshold, self._colour_camera, (width, height),
                                       cfg.depth_stamp_tolerance, cfg.depth_wait)
        if reason:
            self._depth_last_reason = reason
            self.throttle.warn(f"depth: {reason.split(':', 1)[0]}", f"no 3D for this frame: {reason}")
        return body

    def _camera_for(self, width: int, height: int) -> PinholeCamera:
        """The colour camera scaled to this image, or a plausible guess without camera_info
        (only for drawing: 3D positions are never computed with a guess)."""
        return drawing_camera(self._colour_camera, width, height)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        report = self.stats.report()
        level, message = self._health(report)
        status = DiagnosticStatus(level=level, name=f"{self.get_fully_qualified_name()}: pose pipeline",
                                  message=message, hardware_id=self.engine_description or "none")
        values = {
            "backend": self.engine_description or "not loaded",
            "model": self.model_path or self.model_problem,
            "input_topic": self.resolve_topic_name(self._input_topic_name()),
            "mode": self.config.mode,
            "input_qos": self.input_reliability,
            **{k: v for k, v in report.items() if k != "invalid_reasons"},
            "frames_lost_in_transport": self.frames_lost,
            "dropped_boxes": self.stats.total_boxes_invalid,
            "unmatched_box_messages": self.box_buffer.unmatched,
        }
        detector = self.pipeline.detector if self.pipeline is not None else None
        if detector is not None:
            values["detector"] = self.detector_description
            values["detector_problem"] = self.detector_problem
            values["detector_error"] = detector.last_error
        values.update({f"dropped: {k}": n for k, n in report["invalid_reasons"].items()})
        if self.depth is not None:
            depth = self.depth.report()
            values.update({
                "depth_topic": self.resolve_topic_name(self._depth_topic_name()),
                "depth_qos": self.depth_reliability,
                "depth_images_received": depth.received,
                "frames_with_depth": depth.frames_with_depth,
                "frames_without_depth": depth.frames_without_depth,
                "joints_with_depth": depth.joints_with_depth,
                "depth_images_unused": depth.unused,
                **{f"no depth: {k}": n for k, n in depth.dropped.items()},
            })
        status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
        out = DiagnosticArray(status=[status])
        out.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(out)

    def _health(self, report):
        new_invalid = report["dropped_invalid"] - self._prev_invalid
        self._prev_invalid = report["dropped_invalid"]
        lost = self.frames_lost
        new_received, new_lost = (report["frames_received"] - self._prev_received,
                                  lost - self._prev_lost)
        self._prev_received, self._prev_lost = report["frames_received"], lost
        new_depth = (0, 0)  # frames with and without depth since the last report
        if self.depth is not None:
            depth = self.depth.report()
            new_depth = (depth.frames_with_depth - self._prev_depth[0],
                         depth.frames_without_depth - self._prev_depth[1])
            self._prev_depth = (depth.frames_with_depth, depth.frames_without_depth)
        if self.model_problem:
            return DiagnosticStatus.ERROR, f"model not loaded: {self.model_problem}"
        if not self.active:
            return DiagnosticStatus.OK, "inactive"
        if report["last_error"]:  # cleared by the next frame that succeeds
            return DiagnosticStatus.ERROR, f"inference failing: {report['last_error']}"
        expected = "sensor_msgs/msg/" + ("CompressedImage" if self.config.input_transport == "compressed"
                                         else "Image")
        problem = health.input_problem(health.InputFacts(
            topic=self.resolve_topic_name(self._input_topic_name()), expected_type=expected,
            subscription_reliability=self.input_reliability,
            publishers=tuple(self._input_publishers()),
            since_last_frame_s=report["since_last_frame_s"], stale_timeout=self.config.stale_timeout,
            frames_received=new_received, frames_lost=new_lost))
        if problem is not None:
            level, message = problem
            self.throttle.warn(f"input {level}", message)
            return bytes([level]), message
        if new_invalid:
            return DiagnosticStatus.WARN, f"dropped {new_invalid} bad frame(s)"
        if new_depth[1] and not new_depth[0]:
            return DiagnosticStatus.WARN, (f"no depth for the last {new_depth[1]} frame(s), "
                                               f"poses without 3D: {self._depth_last_reason}")
        if self.detector_problem:
            return DiagnosticStatus.WARN, f"detector: HOG instead of MoveNet: {self.detector_problem}"
        return DiagnosticStatus.OK, (f"{report['processing_rate_hz']:.1f} Hz, "
                                     f"{report['people']} people")

    @property
    def frames_lost(self) -> int:
        """Frames the camera sent that never reached the node: sequence gaps of a single
        publisher, or the middleware's own loss reports when those say more."""
        return max(self.gaps.lost, self._middleware_lost)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)


def main(args=None) -> None:
    rclpy.init(args=args)
    node = PoseNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop_worker()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
