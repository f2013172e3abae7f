"""The lapx_ros pose node with config/lapx.yaml.

    ros2 launch lapx_ros lapx.launch.py input_topic:=/my_cam/image_raw namespace:=robot1
    ros2 launch lapx_ros lapx.launch.py params_file:=my_lapx.yaml rviz:=true fixed_frame:=camera_color_optical_frame
    ros2 launch lapx_ros lapx.launch.py input_topic:=/camera/camera/color/image_raw \
        depth_topic:=/camera/camera/aligned_depth_to_color/image_raw     # RealSense, align_depth.enable:=true

Every parameter's value comes from the params file (its '/**' key applies under any
namespace). A launch argument left empty keeps the file's value; one that is given
overrides it. No default is typed here: lapx_ros/ros/params.py is their one source.

large_frames:=true (the default) gives this node the Fast DDS profile
config/fastdds_large_frames.xml unless FASTRTPS_DEFAULT_PROFILES_FILE is already set
(docs/node.md, "Large frames"); a camera driver in another launch needs the same.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "lapx_ros"
# Node parameters that may be set from the command line (strings; empty = the file's value).
OVERRIDES = {
    "input_topic": "sensor_msgs/Image topic",
    "input_transport": "raw | compressed (subscribes <input_topic>/compressed)",
    "camera_info_topic": "sensor_msgs/CameraInfo topic",
    "qos_reliability": "auto | reliable | best_effort",
    "model_path": "ONNX model",
    "model_preset": "default | accurate: the shipped model used when model_path is empty",
    "backend": "auto | onnxruntime | openvino",
    "mode": "single | boxes | detector",
    "detector": "movenet | hog (mode detector)",
    "frame_id": "output frame_id",
    "depth_topic": "registered depth image, e.g. camera/aligned_depth_to_color/image_raw "
                   "(docs/node.md, Depth (3D))",
    "depth_transport": "raw | compressedDepth (subscribes <depth_topic>/compressedDepth)",
}
ARGUMENTS = {
    "namespace": ("", "namespace of the node and its topics"),
    "params_file": (PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "lapx.yaml"]),
                    "parameter file"),
    "use_sim_time": ("", "true = the node's clock follows /clock (bags); empty = the file's value"),
    "large_frames": ("true", "give this node config/fastdds_large_frames.xml (unless "
                             "FASTRTPS_DEFAULT_PROFILES_FILE is set)"),
    "rviz": ("false", "also start RViz with config/lapx.rviz in the same namespace"),
    "fixed_frame": ("camera_optical_frame", "RViz fixed frame: the camera's optical frame_id"),
    **{name: ("", f"{text}; empty = the file's value") for name, text in OVERRIDES.items()},
}


def large_frames_profile():
    """The user's FASTRTPS_DEFAULT_PROFILES_FILE when set, else the package's profile."""
    return EnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", default_value=PathJoinSubstitution(
        [FindPackageShare(PACKAGE), "config", "fastdds_large_frames.xml"]))


def _pose_node(context):
    overrides = {name: LaunchConfiguration(name).perform(context) for name in OVERRIDES}
    overrides = {name: value for name, value in overrides.items() if value != ""}
    sim_time = LaunchConfiguration("use_sim_time").perform(context).lower()
    if sim_time:
        overrides["use_sim_time"] = sim_time in ("true", "1", "yes")
    return [Node(
        package=PACKAGE,
        executable="pose_node",
        name="lapx_pose",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides],
    )]


def generate_launch_description():
    args = [DeclareLaunchArgument(name, default_value=default, description=text)
            for name, (default, text) in ARGUMENTS.items()]
    rviz = Node(
        package="rviz2", executable="rviz2", name="lapx_rviz",
        namespace=LaunchConfiguration("namespace"),
        arguments=["-d", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "lapx.rviz"]),
                   "-f", LaunchConfiguration("fixed_frame")],
        condition=IfCondition(LaunchConfiguration("rviz")))
    return LaunchDescription(args + [
        SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", large_frames_profile(),
                               condition=IfCondition(LaunchConfiguration("large_frames"))),
        OpaqueFunction(function=_pose_node),
        rviz,
    ])
