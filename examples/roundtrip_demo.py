"""HumanPoseArray messages from one process to another over DDS (scripts/roundtrip.sh).

Starts examples/pose_listener.py and examples/pose_talker.py as two separate
processes, shows what each prints, and checks that everything sent arrived.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
COUNT, PEOPLE = 5, 3


def start(name: str, script: str, *args: str) -> tuple[subprocess.Popen, list[str]]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        stdin=subprocess.DEVNULL,
    )
    lines: list[str] = []

    def relay() -> None:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            print(f"[{name}] {line}", end="", flush=True)

    threading.Thread(target=relay, daemon=True).start()
    return proc, lines


def main() -> int:
    print(f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}, "
          f"discovery range {os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', 'default')}", flush=True)
    listener, heard = start("listener", "pose_listener.py", "--count", str(COUNT), "--timeout", "60")
    talker, said = start("talker", "pose_talker.py", "--count", str(COUNT),
                         "--people", str(PEOPLE), "--linger", "60")
    try:
        rc = listener.wait(timeout=90)
    except subprocess.TimeoutExpired:
        listener.kill()
        rc = -1
    finally:
        talker.terminate()
        try:
            talker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            talker.kill()
    got = sum(1 for line in heard if line.startswith("[") and "HumanPoseArray" in line)
    sent = sum(1 for line in said if line.startswith("SENT"))
    ok = rc == 0 and got == COUNT == sent
    print(f"round trip {'OK' if ok else 'FAILED'}: sent {sent}, received {got} "
          f"HumanPoseArray messages with {PEOPLE} people each", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
