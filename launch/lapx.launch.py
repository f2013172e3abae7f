"""The lapx_ros pose node with config/lapx.yaml.

    ros2 launch lapx_ros lapx.launch.py input_topic:=/my_cam/image_raw backend:=openvino

Launch arguments override the YAML; everything else is set in the YAML (or a copy of
it given as params_file:=...).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {
    "namespace": ("", "namespace of the node and its topics"),
    "params_file": (PathJoinSubstitution([FindPackageShare("lapx_ros"), "config", "lapx.yaml"]),
                    "parameter file"),
    "input_topic": ("camera/image_raw", "sensor_msgs/Image topic"),
    "input_transport": ("raw", "raw | compressed (subscribes <input_topic>/compressed)"),
    "model_path": ("", "ONNX model; empty = the shipped default model"),
    "backend": ("auto", "auto | onnxruntime | openvino"),
    "mode": ("single", "single | boxes | detector"),
}


def generate_launch_description():
    args = [DeclareLaunchArgument(name, default_value=default, description=text)
            for name, (default, text) in ARGUMENTS.items()]
    node = Node(
        package="lapx_ros",
        executable="pose_node",
        name="lapx_pose",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "input_topic": ParameterValue(LaunchConfiguration("input_topic"), value_type=str),
                "input_transport": ParameterValue(LaunchConfiguration("input_transport"), value_type=str),
                "model_path": ParameterValue(LaunchConfiguration("model_path"), value_type=str),
                "backend": ParameterValue(LaunchConfiguration("backend"), value_type=str),
                "mode": ParameterValue(LaunchConfiguration("mode"), value_type=str),
            },
        ],
    )
    return LaunchDescription(args + [node])
