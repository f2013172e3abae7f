"""What the set-up installs: ros2-run executables, share/ files, the lapx-* commands."""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROS_EXECUTABLES = {"pose_node": "lapx_ros.ros.node", "replay": "lapx_ros.ros.replay",
                   "bag_poses": "lapx_ros.ros.bag_poses"}


def _prefix() -> Path:
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        return Path(get_package_prefix("lapx_ros"))
    except PackageNotFoundError:
        pytest.fail("lapx_ros is not in the ament index (AMENT_PREFIX_PATH): run make setup")


def test_ros2_run_executables_are_installed():
    lib = _prefix() / "lib" / "lapx_ros"
    for name, module in ROS_EXECUTABLES.items():
        exe = lib / name
        assert exe.is_file() and exe.stat().st_mode & 0o111, f"{exe} missing or not executable"
        text = exe.read_text()
        assert text.startswith("#!") and f"from {module} import main" in text


def test_share_holds_manifest_messages_and_config():
    share = _prefix() / "share" / "lapx_ros"
    assert (share / "package.xml").is_file()
    for msg in (REPO / "msg").glob("*.msg"):
        assert (share / "msg" / msg.name).is_file()
    assert (share / "config" / "fastdds_shm.xml").is_file()


def test_console_scripts_match_setup_py():
    try:
        dist = metadata.distribution("lapx-ros-python")
    except metadata.PackageNotFoundError:
        pytest.skip("pip part not installed here (a colcon install has no lapx-* commands)")
    declared = dict(re.findall(r'"(lapx-[\w-]+)=([\w.]+:main)"', (REPO / "setup.py").read_text()))
    installed = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert installed == declared
    bindir = Path(sys.executable).parent
    for name in declared:
        assert (bindir / name).is_file(), f"{name} not in {bindir}"


def test_fastdds_profile_is_valid_xml_with_large_shm_segment():
    import xml.etree.ElementTree as ET

    ns = {"d": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    root = ET.parse(REPO / "config" / "fastdds_shm.xml").getroot()
    sizes = [int(e.text) for e in root.iterfind(".//d:transport_descriptor/d:segment_size", ns)]
    assert sizes == [16777216]
    assert root.find(".//d:useBuiltinTransports", ns).text == "false"
    assert [e.text for e in root.iterfind(".//d:interfaceWhiteList/d:address", ns)] == ["127.0.0.1"]
