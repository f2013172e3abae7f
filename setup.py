"""pip install of the pure-Python part of lapx_ros (the lapx-* commands).

The ROS package itself is built by CMakeLists.txt (colcon ignores this file for an
ament_cmake package). `scripts/setup.sh` builds the messages with CMake into the
virtual environment first, then runs `pip install --no-deps .` for the commands.

The distribution is named lapx-ros-python, not lapx_ros: the CMake install already
registers a distribution called lapx_ros (rosidl's egg-info for lapx_ros.msg), and pip
replacing a distribution of the same name would delete the whole lapx_ros folder,
generated messages included. Dependencies are listed in requirements.txt (pip) and
package.xml (rosdep), not here.
"""
from setuptools import find_namespace_packages, setup

setup(
    name="lapx-ros-python",
    version="0.1.0",
    description="CPU human pose estimation (LAPX hourglass network) for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_namespace_packages(
        include=["lapx_ros", "lapx_ros.*"], exclude=["*.__pycache__"]
    ),
    include_package_data=False,
    package_data={"lapx_ros": ["**/*.json", "**/*.yaml"]},
    entry_points={
        "console_scripts": [
            "lapx-train=lapx_ros.train:main",
            "lapx-eval=lapx_ros.eval:main",
            "lapx-export=lapx_ros.export:main",
            "lapx-info=lapx_ros.info:main",
            "lapx-pose-node=lapx_ros.ros.node:main",
            "lapx-replay=lapx_ros.ros.replay:main",
            "lapx-bag-poses=lapx_ros.ros.bag_poses:main",
        ]
    },
)
