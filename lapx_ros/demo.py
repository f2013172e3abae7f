"""The README's demo: the pose node on real footage of people, end to end over DDS.

Starts the node (detector mode) and lapx-replay in processes of their own, listens to
/human_pose and the annotated image, writes the annotated video, prints frames,
people, rates and latency, and exits when the footage ends.

Default footage: OpenCV's pedestrian sample vtest.avi from Debian's opencv-doc
package, fetched once with apt-get download into the user's cache folder.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NAMESPACE = "/lapx_demo"
VTEST_IN_DEB = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lapx_ros"


def fetch_vtest() -> Path:
    """vtest.avi from Debian's opencv-doc, downloaded (not installed) once."""
    target = cache_dir() / "vtest.avi"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print("lapx-demo: fetching OpenCV's vtest.avi (Debian package opencv-doc, ~96 MB)", flush=True)
        cmd = ["apt-get", "download", "opencv-doc"]
        if subprocess.run(cmd, cwd=tmp, capture_output=True).returncode != 0 and os.geteuid() == 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        subprocess.run(cmd, cwd=tmp, check=True, capture_output=True)
        (deb,) = Path(tmp).glob("opencv-doc_*.deb")
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True,
                             capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp, VTEST_IN_DEB], input=tar, check=True)
        shutil.move(str(Path(tmp) / VTEST_IN_DEB), target)
    return target


def find_config() -> Path:
    for base in (Path(__file__).resolve().parents[1], Path(sys.prefix) / "share" / "lapx_ros"):
        if (base / "config" / "lapx.yaml").is_file():
            return base / "config" / "lapx.yaml"
    raise FileNotFoundError("config/lapx.yaml not found")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="lapx-demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", help="video file, image folder or camera index (default: vtest.avi)")
    p.add_argument("--model", default="", help="ONNX model (default: the shipped model)")
    p.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "openvino"))
    p.add_argument("--mode", default="detector", choices=("single", "detector"))
    p.add_argument("--frames", type=int, default=300, help="frames to send (0 = all)")
    p.add_argument("--rate", type=float, default=10.0, help="frames per second sent")
    p.add_argument("--output", default="runs/demo/lapx_demo.mp4", help="annotated video")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="extra node parameter (repeatable), e.g. -p smoothing:=true")
    return p.parse_args(argv)


class Recorder:
    """Subscribes to the node's outputs and keeps what the summary needs."""

    def __init__(self, node, output: Path, fps: float):
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy
        from sensor_msgs.msg import Image

        from lapx_ros.msg import HumanPoseArray

        reliable = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
        self.node = node
        self.output = output
        self.fps = fps
        self.latencies: list[float] = []
        self.people: list[int] = []
        self.ids: set[int] = set()
        self.first = self.last = None
        self.writer = None
        self.video_frames = 0
        node.create_subscription(HumanPoseArray, f"{NAMESPACE}/human_pose", self._on_pose, reliable)
        node.create_subscription(Image, f"{NAMESPACE}/human_pose/image", self._on_image, reliable)

    def _on_pose(self, msg) -> None:
        now = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.latencies.append(now - stamp)
        self.people.append(len(msg.people))
        self.ids.update(p.id for p in msg.people)
        self.first = self.first or now
        self.last = now
        if len(self.people) % 50 == 0:
            print(f"lapx-demo: {len(self.people)} frames processed, {len(msg.people)} people "
                  f"in the last one", flush=True)

    def _on_image(self, msg) -> None:
        import cv2

        from lapx_ros.ros.convert import image_to_bgr

        frame = image_to_bgr(msg)
        if self.writer is None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.writer = cv2.VideoWriter(str(self.output), cv2.VideoWriter_fourcc(*"mp4v"),
                                          self.fps, (frame.shape[1], frame.shape[0]))
        self.writer.write(frame)
        self.video_frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def main(argv=None) -> int:
    args = parse_args(argv)
    import rclpy

    from lapx_ros.runtime.engine import default_model_path

    source = args.source or str(fetch_vtest())
    model = args.model or default_model_path()
    if not model:
        print("lapx-demo: no model in models/ and none given with --model", file=sys.stderr)
        return 2
    python = sys.executable
    node_cmd = [python, "-m", "lapx_ros.ros.node", "--ros-args", "--params-file", str(find_config()),
                "-r", f"__ns:={NAMESPACE}", "-p", f"model_path:={model}", "-p", f"mode:={args.mode}",
                "-p", f"backend:={args.backend}",
                # vtest.avi's pedestrians (60-110 px) are smaller than HOG's 128 px window
                "-p", "detector_scale:=1.5"]
    for param in args.param:
        node_cmd += ["-p", param]
    replay_cmd = [python, "-m", "lapx_ros.ros.replay", source, "--topic", f"{NAMESPACE}/camera/image_raw",
                  "--rate", str(args.rate), "--count", str(args.frames), "--wait-subscribers", "1",
                  "--quiet"]
    rclpy.init()
    listener = rclpy.create_node("lapx_demo_listener")
    recorder = Recorder(listener, Path(args.output), args.rate)
    node_log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would block the node
    node_proc = subprocess.Popen(node_cmd, stdout=node_log, stderr=subprocess.STDOUT, text=True)
    replay_proc = None
    try:
        deadline = time.monotonic() + 60
        while listener.count_publishers(f"{NAMESPACE}/human_pose") == 0:
            if node_proc.poll() is not None or time.monotonic() > deadline:
                node_log.seek(0)
                print(f"lapx-demo: the node did not start:\n{node_log.read()}", file=sys.stderr)
                return 1
            rclpy.spin_once(listener, timeout_sec=0.1)
        print(f"lapx-demo: node up ({args.mode} mode); replaying {source} at {args.rate:g} Hz", flush=True)
        started = time.time()
        replay_proc = subprocess.Popen(replay_cmd)
        while replay_proc.poll() is None:
            rclpy.spin_once(listener, timeout_sec=0.1)
        drain = time.monotonic() + 3.0
        while time.monotonic() < drain:
            rclpy.spin_once(listener, timeout_sec=0.1)
        elapsed = time.time() - started
    finally:
        for proc in (replay_proc, node_proc):
            if proc is not None and proc.poll() is None:
                proc.send_signal(2)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        recorder.close()
        node_log.seek(0)
        node_output = node_log.read()
        listener.destroy_node()
        rclpy.try_shutdown()
    backend = [line for line in node_output.splitlines() if "backend" in line][:1]
    processed = len(recorder.people)
    lat = np.asarray(recorder.latencies) * 1000.0
    span = (recorder.last - recorder.first) if processed > 1 else float("nan")
    print("lapx-demo: summary")
    print(f"  frames sent       {args.frames or 'all'} at {args.rate:g} Hz ({elapsed:.0f} s)")
    print(f"  frames processed  {processed} ({(processed - 1) / span if processed > 1 else 0:.1f} Hz)")
    if processed:
        print(f"  people per frame  {np.mean(recorder.people):.2f} (max {max(recorder.people)}), "
              f"{len(recorder.ids - {0})} track ids")
        print(f"  latency           p50 {np.median(lat):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms "
              "(image stamp -> pose received)")
    if backend:
        print(f"  model/backend     {backend[0].split(']: ')[-1]}")
    print(f"  annotated video   {args.output} ({recorder.video_frames} frames)")
    return 0 if processed else 1


if __name__ == "__main__":
    sys.exit(main())
