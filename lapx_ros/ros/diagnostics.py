"""The pose node's /diagnostics: every counter of the pipeline and its inputs as key-value
pairs, at the level ``health.pipeline_status`` decides, once a period. The counters are
totals since start; the level speaks of the last period."""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from lapx_ros.ros.inputs import colour_topic, depth_topic
from lapx_ros.ros.qos_follow import publishers_of
from lapx_ros.runtime import health

DEPTH_TOTALS = ("frames_with_depth", "frames_without_depth")


class Diagnostics:
    """Publishes what ``stats`` (PipelineStats), ``inputs`` (Inputs) and ``box_buffer``
    counted, with the state the node hands to ``publish``."""

    def __init__(self, node, stats, inputs, box_buffer, throttle):
        self._node = node
        self._stats = stats
        self._inputs = inputs
        self._box_buffer = box_buffer
        self._throttle = throttle
        self._publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._deltas = health.Deltas()
        self._depth = None  # the DepthStream whose totals the deltas follow

    def publish(self, config, active: bool, model, pipeline, depth) -> None:
        """``model`` is the node's ModelStatus, ``pipeline`` its PosePipeline (or None) and
        ``depth`` its DepthStream (or None)."""
        node = self._node
        report = self._stats.report()
        depth_report = depth.report() if depth is not None else None
        verdict = health.pipeline_status(self._facts(config, active, model, report, depth, depth_report))
        if verdict.warn:
            self._throttle.warn(f"input {verdict.level}", verdict.message)
        values = {
            "backend": model.engine or "not loaded",
            "model": model.path or model.problem,
            "input_topic": node.resolve_topic_name(colour_topic(config)),
            "mode": config.mode,
            "input_qos": self._inputs.colour_reliability,
            **{k: v for k, v in report.items() if k != "invalid_reasons"},
            "frames_lost_in_transport": self._inputs.frames_lost,
            "dropped_boxes": self._stats.total_boxes_invalid,
            "unmatched_box_messages": self._box_buffer.unused,
        }
        detector = pipeline.detector if pipeline is not None else None
        if detector is not None:
            values.update(detector=model.detector, detector_problem=model.detector_problem,
                          detector_error=detector.last_error)
        values.update({f"dropped: {k}": n for k, n in report["invalid_reasons"].items()})
        if depth_report is not None:
            values.update({
                "depth_topic": node.resolve_topic_name(depth_topic(config)),
                "depth_qos": self._inputs.depth_reliability,
                "depth_images_received": depth_report.received,
                "frames_with_depth": depth_report.frames_with_depth,
                "frames_without_depth": depth_report.frames_without_depth,
                "frames_depth_too_late": depth_report.frames_too_late,
                "joints_with_depth": depth_report.joints_with_depth,
                "depth_images_unused": depth_report.unused,
                **{f"no depth: {k}": n for k, n in depth_report.dropped.items()},
            })
        status = DiagnosticStatus(level=bytes([verdict.level]),
                                  name=f"{node.get_fully_qualified_name()}: pose pipeline",
                                  message=verdict.message, hardware_id=model.engine or "none")
        status.values = [KeyValue(key=k, value=_text(v)) for k, v in values.items()]
        out = DiagnosticArray(status=[status])
        out.header.stamp = node.get_clock().now().to_msg()
        self._publisher.publish(out)

    def _facts(self, config, active, model, report, depth, depth_report) -> health.PipelineFacts:
        if depth is not self._depth:  # a new stream counts from zero
            self._depth = depth
            self._deltas.forget(*DEPTH_TOTALS)
        new_depth = [self._deltas.since_last(name, getattr(depth_report, name)) if depth_report else 0
                     for name in DEPTH_TOTALS]
        topic = colour_topic(config)
        expected = "sensor_msgs/msg/" + ("CompressedImage" if config.input_transport == "compressed"
                                         else "Image")
        return health.PipelineFacts(
            model_problem=model.problem, active=active, last_error=report["last_error"],
            input=health.InputFacts(
                topic=self._node.resolve_topic_name(topic), expected_type=expected,
                subscription_reliability=self._inputs.colour_reliability,
                publishers=tuple(publishers_of(self._node, topic)),
                since_last_frame_s=report["since_last_frame_s"], stale_timeout=config.stale_timeout,
                frames_received=self._deltas.since_last("frames_received", report["frames_received"]),
                frames_lost=self._deltas.since_last("frames_lost", self._inputs.frames_lost)),
            new_invalid=self._deltas.since_last("dropped_invalid", report["dropped_invalid"]),
            new_with_depth=new_depth[0], new_without_depth=new_depth[1],
            depth_reason=depth_report.last_reason if depth_report else "",
            detector_problem=model.detector_problem, detector_fallback=model.detector_fallback,
            processing_rate_hz=report["processing_rate_hz"], people=report["people"])


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)
