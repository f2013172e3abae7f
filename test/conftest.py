"""Shared pytest set-up.

ROS 2 environment for this run (the same values scripts/test.sh sets, so plain
`pytest` works too; values already set from outside are kept):
  ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST   discovery stays on this machine
  ROS_DOMAIN_ID=<1..101 from the PID>       parallel runs never see each other
  FASTRTPS_DEFAULT_PROFILES_FILE=config/fastdds_shm.xml   shared memory + loopback UDP
Fixtures:
  ros_process   start a ROS Python script in a subprocess (lapx_ros.testing.ros_processes);
                stopped when the test ends
  unique_topic  a topic name no other test uses
  lspet_dir     the shared LSPET data (skipped with the reason when absent)
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from lapx_ros.testing.ros_processes import RosProcess

TEST_DIR = Path(__file__).resolve().parent
REPO = TEST_DIR.parent

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 101 + 1))
os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))


@pytest.fixture
def ros_process():
    """Factory: ros_process(script, *args, ready=REGEX, ready_timeout=30, env=..., name=...).

    Starts the script with this interpreter in its own process, waits for an output
    line matching `ready` if given, and returns the RosProcess. Every process started
    through the fixture is stopped at the end of the test.
    """
    started: list[RosProcess] = []

    def start(script, *args, ready: str | None = None, ready_timeout: float = 30.0, **kwargs):
        proc = RosProcess(script, *args, **kwargs)
        started.append(proc)
        if ready is not None:
            proc.wait_for(ready, timeout=ready_timeout)
        return proc

    yield start
    for proc in reversed(started):
        proc.stop()


SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(name: str, what: str, file: str, folder: str) -> Path:
    """shared/data/``name`` beside the repository; skips, saying so, when ``file`` or
    ``folder`` is missing from it."""
    path = SHARED_DATA / name
    if not (path / file).is_file() or not (path / folder).is_dir():
        pytest.skip(f"{what} missing: expected {folder}/ and {file} in {path}")
    return path


@pytest.fixture(scope="session")
def lspet_dir() -> Path:
    return shared_data("lspet", "LSPET data", "joints.mat", "images")


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    return shared_data("people/fashion", "people/fashion data", "person_keypoints.json", "images")


@pytest.fixture(scope="session")
def coco_dir() -> Path:
    return shared_data("coco-mini", "COCO sliver", "person_keypoints_val2017.json", "val2017")


@pytest.fixture
def unique_topic() -> str:
    return f"/lapx_test_{uuid.uuid4().hex[:12]}/human_pose"
