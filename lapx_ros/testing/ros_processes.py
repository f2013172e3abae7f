"""Run ROS 2 Python scripts in separate processes, for tests and benchmarks.

    from lapx_ros.testing.ros_processes import RosProcess

    with RosProcess(EXAMPLES / "pose_listener.py", "--count", "3") as listener:
        listener.wait_for(r"^READY$", timeout=20)
        ...
        assert listener.wait_exit(timeout=30) == 0, listener.output

In a test, prefer the `ros_process` fixture from test/conftest.py: it starts a process the
same way, optionally waits for its ready line, and stops every process it started
when the test ends, passed or failed.

Each process:
  - runs with this interpreter (so with this virtual environment),
  - gets this process's environment (ROS_DOMAIN_ID, discovery range and Fast DDS
    profile from conftest.py), unbuffered output, and the repository root first on
    PYTHONPATH so it imports the same lapx_ros source as the tests,
  - runs in its own process group, so stopping it also stops anything it started,
  - has its stdout and stderr collected line by line (`lines`, `output`).
Stopping sends SIGINT (rclpy shuts down cleanly), then SIGTERM, then SIGKILL.
"""
from __future__ import annotations

import atexit
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Mapping

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

_alive: "set[RosProcess]" = set()


def ros_env(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment for a ROS subprocess started from a test; ``extra`` values of None
    remove a variable."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    paths = [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)  # e.g. run without the test run's Fast DDS profile
        else:
            env[name] = value
    return env


class RosProcess:
    """A Python script (or `-m module`) running in a subprocess; see the module doc."""

    def __init__(
        self,
        script: str | os.PathLike,
        *args: str | os.PathLike,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
    ) -> None:
        argv = [sys.executable, str(script), *map(str, args)]
        self.name = name or Path(str(args[0] if str(script) == "-m" else script)).stem
        self.argv = argv
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=ros_env(env),
            cwd=str(cwd or REPO),
            start_new_session=True,
        )
        _alive.add(self)
        self._reader = threading.Thread(target=self._read, name=f"read-{self.name}", daemon=True)
        self._reader.start()

    # -- output ---------------------------------------------------------------------
    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def _describe(self) -> str:
        return f"{self.name} (pid {self.proc.pid}, exit code {self.proc.poll()}) printed:\n{self.output}"

    def wait_for(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match:
        """Wait for an output line (from line index `start` on) matching the regex.

        Raises AssertionError with everything the process printed if the line does
        not come within `timeout` seconds or the process ends without printing it.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = start
        with self._cond:
            while True:
                for line in self._lines[checked:]:
                    m = regex.search(line)
                    if m:
                        return m
                checked = max(checked, len(self._lines))
                if self._eof:
                    raise AssertionError(f"{pattern!r} never came: {self._describe()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{pattern!r} not within {timeout} s: {self._describe()}")
                self._cond.wait(min(left, 0.5))

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to end by itself; AssertionError (and a stop) if it does not."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"did not exit within {timeout} s: {self._describe()}") from None
        self._reader.join(timeout=5)
        _alive.discard(self)
        return rc

    # -- stopping -------------------------------------------------------------------
    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float = 10.0) -> int:
        """End the process (and its process group): SIGINT, SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                self._signal(sig)
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # children that outlived the leader
        self._signal(signal.SIGKILL)
        self._reader.join(timeout=5)
        _alive.discard(self)
        return self.proc.returncode

    def __enter__(self) -> "RosProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_all(processes: Iterable[RosProcess] | None = None) -> None:
    """Stop the given processes (default: every one still running)."""
    for p in list(processes if processes is not None else _alive):
        p.stop(timeout=5.0)


atexit.register(stop_all)
