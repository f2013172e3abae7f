"""What the pose node publishes for each frame: the poses, RViz markers and the annotated
image, the last two only while someone subscribes (drawing costs the worker's time).
The annotated image goes out as soon as the poses are known; the poses and markers once
the frame's depth is settled (its depth image came, or its wait ran out)."""
from __future__ import annotations

from dataclasses import dataclass

from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from lapx_ros.msg import HumanPoseArray
from lapx_ros.ros.convert import to_image_msg
from lapx_ros.ros.markers import MarkerBuilder, drawing_camera
from lapx_ros.ros.messages import pose_array_msg
from lapx_ros.runtime.drawing import draw_poses


@dataclass(frozen=True)
class FramePoses:
    """A processed frame's poses on their way out."""

    header: object  # std_msgs/Header of the message: the frame's stamp and frame_id
    stamp: float  # seconds
    arrived: float  # time.monotonic() when the frame came
    size: tuple[int, int]  # (width, height) of the frame
    poses: list
    compute: float  # seconds the worker spent on the frame


class Outputs:
    """The node's lifecycle publishers, from configure to cleanup."""

    def __init__(self, node):
        self._node = node
        reliable = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
        self._poses = node.create_lifecycle_publisher(HumanPoseArray, "human_pose", reliable)
        self._markers = node.create_lifecycle_publisher(MarkerArray, "human_pose/markers", reliable)
        # Reliable depth 1: RViz (reliable by default) can see it, and no backlog builds.
        self._image = node.create_lifecycle_publisher(
            Image, "human_pose/image", QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE))
        self._marker_builder = MarkerBuilder()

    def publish_image(self, config, header, frame, poses, skeleton) -> None:
        """The frame with its skeletons drawn, while someone watches."""
        if self._image.get_subscription_count() > 0:
            draw_poses(frame, poses, skeleton, config.keypoint_threshold)
            self._image.publish(to_image_msg(frame, "bgr8", header))

    def publish_poses(self, config, out: FramePoses, metadata, body, colour_camera) -> None:
        """One frame's poses and markers; ``body`` is their BodyDepth (None without depth)
        and ``colour_camera`` the colour CameraInfo's model (None before one came)."""
        width, height = out.size
        self._poses.publish(pose_array_msg(out.header, out.poses, width, height, metadata.joint_names,
                                           metadata.skeleton, body))
        if config.publish_markers and self._markers.get_subscription_count() > 0:
            camera = drawing_camera(colour_camera, width, height)
            self._markers.publish(self._marker_builder.build(
                out.header, out.poses, metadata.skeleton, camera, config.marker_depth,
                config.keypoint_threshold, config.marker_lifetime, None if body is None else body.positions))

    def clear_markers(self) -> None:
        self._markers.publish(self._marker_builder.clear(HumanPoseArray().header))

    def destroy(self) -> None:
        for publisher in (self._poses, self._markers, self._image):
            self._node.destroy_lifecycle_publisher(publisher)
