"""The pose node: a managed (lifecycle) node that wires parameters, topics and timers to
plain objects.

Frames arrive through ``Inputs`` (the input's QoS follows the camera's publishers, frames
lost in transport are counted) and go to a ``NewestFrameWorker`` (newest frame wins, the
rest are counted stale), which runs them through the ``PosePipeline`` and publishes the
poses. ``Diagnostics`` turns the counters into /diagnostics a user can act on. Bad input
is dropped with a rate-limited warning and counted; nothing a camera sends can stop the
worker.

With ``depth_topic`` set, depth messages go undecoded into a ``DepthStream``; a frame's
poses wait for their depth image on an ``InOrderWorker`` (up to ``depth_wait`` after the
frame came) while the worker goes on. Bad or late depth costs a frame its 3D only.
"""
from __future__ import annotations

import copy
import dataclasses
import time

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn

from lapx_ros.ros import params
from lapx_ros.ros.convert import ImageConversionError, compressed_to_bgr, depth_from_message, image_to_bgr
from lapx_ros.ros.diagnostics import Diagnostics
from lapx_ros.ros.inputs import Inputs, colour_topic, depth_topic
from lapx_ros.ros.messages import finite_poses, locate_in_depth, stamp_seconds
from lapx_ros.ros.outputs import FramePoses, Outputs
from lapx_ros.ros.qos_follow import PUBLISHER_CHECK_PERIOD
from lapx_ros.runtime.depth import DepthSettings, DepthStream, torso_joints
from lapx_ros.runtime.engine import InferenceError
from lapx_ros.runtime.estimator import sanitize_boxes
from lapx_ros.runtime.frames import (FrameGate, InOrderWorker, NewestFrameWorker, PipelineStats,
                                     StampBuffer, reason_kind)
from lapx_ros.runtime.loader import ModelStatus, load_pipeline
from lapx_ros.runtime.pipeline import PosePipeline
from lapx_ros.runtime.throttle import WarningThrottle


class PoseNode(LifecycleNode):
    """Camera frames in; /human_pose, markers, annotated image and diagnostics out."""

    def __init__(self, **kwargs):
        super().__init__(params.NODE_NAME, **kwargs)
        self.config = params.declare(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.stats = PipelineStats()
        self.gate = FrameGate()
        self.box_buffer = StampBuffer(capacity=30)
        self.throttle = WarningThrottle(self.get_logger())
        self.model = ModelStatus()
        self.pipeline: PosePipeline | None = None
        self.depth: DepthStream | None = None  # while configured with a depth_topic
        self._unmatched_warned = 0  # box messages matching no frame, as last warned about
        self.active = False
        self.worker = NewestFrameWorker(self._process, self._on_worker_error, self.stats)
        self.depth_waits = InOrderWorker(self._finish, self._on_worker_error, self.stats)
        self.inputs = Inputs(self, lambda *frame: self.worker.put(frame), self.throttle)
        self.diagnostics = Diagnostics(self, self.stats, self.inputs, self.box_buffer, self.throttle)
        self.outputs: Outputs | None = None  # from configure to cleanup
        self.create_timer(self.config.diagnostics_period, self._publish_diagnostics)
        self.create_timer(PUBLISHER_CHECK_PERIOD, self.inputs.follow)
        self._start_timer = None
        if self.config.autostart:
            self._start_timer = self.create_timer(self.config.retry_period, self._autostart)
            self._autostart()

    # ---------------------------------------------------------------- parameters
    def _on_set_parameters(self, changed) -> SetParametersResult:
        """Checks and applies changes of this node's parameters; the ones rclpy declares
        itself (use_sim_time, ...) are left to rclpy."""
        updates = {}
        for p in changed:
            if p.name not in params.SPECS:
                continue
            reason = params.check_runtime(p.name, p.value)
            if reason:
                return self._refuse(reason)
            updates[p.name] = params.coerce(p.name, p.value)
        if not updates:
            return SetParametersResult(successful=True)
        config = self.config.replace(**updates)
        if any(name.startswith("depth_") for name in updates):
            try:
                settings = params.depth_settings(config)
            except ValueError as exc:
                return self._refuse(f"depth settings do not fit together: {exc}")
            if self.depth is not None:
                self.depth.settings = settings
        self.config = config
        if self.depth is not None:
            self.depth.max_pixels = config.max_image_pixels
        if self.pipeline is not None:
            self.pipeline.config = params.pipeline_config(config)
            if self.pipeline.detector is not None:
                self.pipeline.detector.detect.update(params.detector_settings(config))
        self.get_logger().info(f"parameters changed: {updates}")
        return SetParametersResult(successful=True)

    def _refuse(self, reason: str) -> SetParametersResult:
        self.get_logger().warning(f"parameter change refused: {reason}")
        return SetParametersResult(successful=False, reason=reason)

    # ----------------------------------------------------------------- lifecycle
    def _autostart(self) -> None:
        """Configure and activate; on failure the timer tries again every retry_period."""
        if not self.pipeline and self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return
        if not self.active and self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            return
        self._start_timer.cancel()

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        cfg, log = self.config, self.get_logger()
        loaded = load_pipeline(params.model_settings(cfg), params.pipeline_config(cfg),
                               params.detector_settings(cfg))
        status = loaded.status
        if loaded.pipeline is None:
            if status.problem != self.model.problem:  # retries on one problem stay quiet
                for text in loaded.notes:
                    log.warning(text)
                log.error(f"cannot configure: {status.problem}")
            self.model = dataclasses.replace(self.model, problem=status.problem)
            return TransitionCallbackReturn.FAILURE
        for text in loaded.notes:
            log.warning(text)
        self.model = status
        log.info(f"model {status.path}: {status.summary}; backend {status.engine}")
        if status.detector_problem:
            log.error(f"{status.detector_problem}; mode detector falls back to {status.detector_fallback}")
        if status.detector:
            log.info(f"detector: {status.detector}")
        self.pipeline = loaded.pipeline
        self.pipeline.newer_frame_waiting = self.worker.has_waiting
        self.depth = self._make_depth_stream() if cfg.depth_topic else None
        self.outputs = Outputs(self)
        return TransitionCallbackReturn.SUCCESS

    def _make_depth_stream(self) -> DepthStream | None:
        try:
            torso = torso_joints(self.pipeline.estimator.metadata.joint_names)
        except ValueError as exc:
            self.get_logger().error(f"depth_topic ignored: {exc}")
            return None
        try:
            settings = params.depth_settings(self.config)
        except ValueError as exc:
            self.get_logger().error(f"depth settings refused: {exc}; using the defaults")
            settings = DepthSettings()
        return DepthStream(settings, torso, depth_from_message, max_pixels=self.config.max_image_pixels)

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        cfg = self.config
        self.gate.forget()
        self.worker.start()
        self.depth_waits.start()
        self.inputs.open(cfg, self.depth, self.box_buffer if self.pipeline.mode.takes_boxes else None)
        self.active = True
        depth = ""
        if self.depth is not None:
            depth = (f", depth from {self.resolve_topic_name(depth_topic(cfg))} "
                     f"({self.inputs.depth_reliability})")
        self.get_logger().info(f"active: {cfg.mode} mode on {self.resolve_topic_name(colour_topic(cfg))} "
                               f"({self.inputs.colour_reliability} input, qos_reliability "
                               f"{cfg.qos_reliability}){depth}")
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self.inputs.close()
        self.stop_worker()
        self.outputs.clear_markers()
        self.pipeline.reset()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.outputs.destroy()
        self.outputs = None
        self.pipeline = None
        self.depth = None
        self.model = dataclasses.replace(self.model, detector="", detector_problem="", detector_fallback="")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self.stop_worker()
        return TransitionCallbackReturn.SUCCESS

    def _publish_diagnostics(self) -> None:
        self.diagnostics.publish(self.config, self.active, self.model, self.pipeline, self.depth)

    # ------------------------------------------------------------------- worker
    def stop_worker(self) -> None:
        self.worker.stop()
        self.depth_waits.stop()

    def _on_worker_error(self, exc: Exception) -> None:
        self.throttle.warn("exception", f"frame failed: {type(exc).__name__}: {exc}")

    def _drop(self, reason: str) -> None:
        """Count the frame and warn, rate-limited per kind of problem (so one kind cannot
        hide another)."""
        kind = self.stats.invalid(reason)
        self.throttle.warn(f"drop: {kind}", f"dropped frame: {reason}")

    def _process(self, item) -> None:
        msg, compressed, arrived = item
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
        if self.pipeline.mode.takes_boxes:
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
        self.outputs.publish_image(cfg, header, frame, poses, self.pipeline.estimator.metadata.skeleton)
        out = FramePoses(header, stamp, arrived, (frame.shape[1], frame.shape[0]), poses,
                         time.monotonic() - started)
        if self.depth is None:
            self._finish(out)
        else:
            self.depth_waits.put(out)

    def _finish(self, out: FramePoses) -> None:
        """Publish a frame's poses, with 3D when its depth image comes in time."""
        body = self._locate_depth(out) if self.depth is not None else None
        self.outputs.publish_poses(self.config, out, self.pipeline.estimator.metadata, body,
                                   self.inputs.colour_camera)
        self.stats.processed(self._now() - out.stamp, out.compute, len(out.poses))

    def _boxes_for(self, stamp: float, width: int, height: int):
        cfg = self.config
        found = self.box_buffer.take(stamp, cfg.boxes_stamp_tolerance, cfg.boxes_wait)
        unmatched = self.box_buffer.unused
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

    def _locate_depth(self, out: FramePoses):
        """The frame's people in metres (BodyDepth), or None without depth (warned once
        per kind of reason; the poses go out all the same). The depth image may come
        until ``depth_wait`` after the frame came."""
        cfg = self.config
        wait = max(0.0, out.arrived + cfg.depth_wait - time.monotonic())
        body, reason = locate_in_depth(self.depth, out.stamp, out.poses,
                                       self.pipeline.estimator.metadata.joint_names, cfg.keypoint_threshold,
                                       self.inputs.colour_camera, out.size, cfg.depth_stamp_tolerance, wait)
        if reason:
            self.throttle.warn(f"depth: {reason_kind(reason)}", f"no 3D for this frame: {reason}")
        return body

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


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
