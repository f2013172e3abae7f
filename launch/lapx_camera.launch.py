"""A camera driver and the lapx_ros pose node on its images.

    ros2 launch lapx_ros lapx_camera.launch.py camera_driver:=usb_cam video_device:=/dev/video0
    ros2 launch lapx_ros lapx_camera.launch.py camera_driver:=realsense2_camera

camera_driver is v4l2_camera (package ros-jazzy-v4l2-camera) or usb_cam
(ros-jazzy-usb-cam), which publish camera/image_raw and camera/camera_info here, or
realsense2_camera (ros-jazzy-realsense2-camera), an RGB-D camera started with
align_depth.enable:=true, whose topics here are camera/color/image_raw and the depth
registered to it, camera/aligned_depth_to_color/image_raw (each with camera_info beside
it): the node then reports every joint in metres (docs/node.md, "Depth (3D)"). All of
them publish reliably by default (the node's qos_reliability: auto follows them).
depth_topic:=... names the depth of another RGB-D driver started elsewhere (Orbbec
camera/depth/image_raw with depth_registration:=true, ZED zed/zed_node/depth/depth_registered,
OAK-D oak/stereo/image_raw); the remaining arguments go to lapx.launch.py. With
large_frames:=true (the default) the driver and the node get
config/fastdds_large_frames.xml unless FASTRTPS_DEFAULT_PROFILES_FILE is already set:
the driver sends the frames, so it is the process that needs the large shared-memory
segment (docs/node.md, "Large frames").
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.conditions import IfCondition, LaunchConfigurationEquals, LaunchConfigurationNotEquals
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

FORWARDED = ("namespace", "input_transport", "model_path", "model_preset", "backend", "mode",
             "large_frames", "use_sim_time")
# realsense2_camera 4.x names its topics under its node name: <namespace>/camera/...
REALSENSE_COLOUR = "camera/color/image_raw"
REALSENSE_DEPTH = "camera/aligned_depth_to_color/image_raw"


def large_frames_profile():
    """The user's FASTRTPS_DEFAULT_PROFILES_FILE when set, else the package's profile."""
    return EnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", default_value=PathJoinSubstitution(
        [FindPackageShare("lapx_ros"), "config", "fastdds_large_frames.xml"]))


def generate_launch_description():
    device = LaunchConfiguration("video_device")
    node_launch = PathJoinSubstitution([FindPackageShare("lapx_ros"), "launch", "lapx.launch.py"])
    remaps = [("image_raw", "camera/image_raw"), ("camera_info", "camera/camera_info"),
              ("image_raw/compressed", "camera/image_raw/compressed")]
    return LaunchDescription([
        DeclareLaunchArgument("camera_driver", default_value="v4l2_camera",
                              choices=["v4l2_camera", "usb_cam", "realsense2_camera"]),
        # empty = the params file's value (no depth unless it names one)
        DeclareLaunchArgument("depth_topic", default_value="",
                              description="registered depth image of an RGB-D driver started "
                                          "elsewhere; realsense2_camera sets its own"),
        DeclareLaunchArgument("video_device", default_value="/dev/video0"),
        DeclareLaunchArgument("namespace", default_value=""),
        # empty = the params file's value (lapx.launch.py)
        DeclareLaunchArgument("input_transport", default_value=""),
        DeclareLaunchArgument("model_path", default_value=""),
        DeclareLaunchArgument("model_preset", default_value="", description="default | accurate"),
        DeclareLaunchArgument("backend", default_value=""),
        DeclareLaunchArgument("mode", default_value=""),
        DeclareLaunchArgument("use_sim_time", default_value=""),
        DeclareLaunchArgument("large_frames", default_value="true"),
        SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", large_frames_profile(),
                               condition=IfCondition(LaunchConfiguration("large_frames"))),
        Node(package="v4l2_camera", executable="v4l2_camera_node", name="camera",
             namespace=LaunchConfiguration("namespace"), remappings=remaps,
             parameters=[{"video_device": device}],
             condition=LaunchConfigurationEquals("camera_driver", "v4l2_camera")),
        Node(package="usb_cam", executable="usb_cam_node_exe", name="camera",
             namespace=LaunchConfiguration("namespace"), remappings=remaps,
             parameters=[{"video_device": device, "framerate": 30.0}],
             condition=LaunchConfigurationEquals("camera_driver", "usb_cam")),
        Node(package="realsense2_camera", executable="realsense2_camera_node", name="camera",
             namespace=LaunchConfiguration("namespace"),
             parameters=[{"align_depth.enable": True}],
             condition=LaunchConfigurationEquals("camera_driver", "realsense2_camera")),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(node_launch),
            launch_arguments={
                "input_topic": "camera/image_raw",
                "depth_topic": LaunchConfiguration("depth_topic"),
                **{name: LaunchConfiguration(name) for name in FORWARDED},
            }.items(),
            condition=LaunchConfigurationNotEquals("camera_driver", "realsense2_camera")),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(node_launch),
            launch_arguments={
                "input_topic": REALSENSE_COLOUR,
                "depth_topic": REALSENSE_DEPTH,
                **{name: LaunchConfiguration(name) for name in FORWARDED},
            }.items(),
            condition=LaunchConfigurationEquals("camera_driver", "realsense2_camera")),
    ])
