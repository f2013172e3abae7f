"""lapx-replay: publish a video file, an image folder or a webcam as a camera would.

Each frame goes out as sensor_msgs/Image (any encoding the node reads) and/or
CompressedImage on ``<topic>/compressed``, stamped when sent, with a plausible
CameraInfo beside it, at a fixed rate, optionally looping. It lets the node, the
demo and the tests run on real footage without a camera driver.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

from lapx_ros.ros.convert import COMPRESSED_FORMATS, OUTPUT_ENCODINGS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class FrameSource:
    """BGR frames from a video file, an image folder / single image, or a camera index."""

    def __init__(self, spec: str, size=None):
        self.spec = spec
        self.size = size  # (w, h) to resize to, or None
        self._images: list[Path] | None = None
        path = Path(spec)
        if path.is_dir():
            self._images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {spec}")
        elif path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            self._images = [path]
        self.is_camera = spec.isdigit() or spec.startswith("/dev/video")
        if self._images is None and not self.is_camera and not path.is_file():
            raise ValueError(f"{spec}: no such file, folder or camera")

    def frames(self, loop: bool = False):
        """Yield frames; with ``loop`` start again at the end (not for cameras)."""
        while True:
            produced = 0
            for frame in (self._from_images() if self._images else self._from_capture()):
                produced += 1
                yield self._resize(frame)
            if not loop or self.is_camera or produced == 0:
                return

    def _from_images(self):
        for path in self._images:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is not None:
                yield frame

    def _from_capture(self):
        source = int(self.spec) if self.spec.isdigit() else self.spec
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            raise ValueError(f"{self.spec}: OpenCV cannot open it as a video or camera")
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield frame
        finally:
            capture.release()

    def _resize(self, frame):
        if self.size and (frame.shape[1], frame.shape[0]) != tuple(self.size):
            return cv2.resize(frame, tuple(self.size), interpolation=cv2.INTER_AREA)
        return frame


def camera_info_for(width: int, height: int, header):
    """A pinhole CameraInfo with a focal length of one image width and no distortion."""
    from sensor_msgs.msg import CameraInfo

    f, cx, cy = float(width), (width - 1) / 2.0, (height - 1) / 2.0
    info = CameraInfo()
    info.header = header
    info.width, info.height = width, height
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="lapx-replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="video file, image folder or file, or camera index / /dev/videoN")
    parser.add_argument("--topic", default="camera/image_raw", help="Image topic")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second (0 = as fast as possible)")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--count", type=int, default=0, help="stop after this many frames (0 = no limit)")
    parser.add_argument("--encoding", default="bgr8", choices=OUTPUT_ENCODINGS)
    parser.add_argument("--transport", default="raw", choices=("raw", "compressed", "both"))
    parser.add_argument("--format", default="jpeg", choices=COMPRESSED_FORMATS,
                        help="CompressedImage format")
    parser.add_argument("--frame-id", default="camera_optical_frame")
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), help="resize frames")
    parser.add_argument("--reliable", action="store_true", help="reliable QoS (default: sensor data)")
    parser.add_argument("--wait-subscribers", type=int, default=0,
                        help="wait (up to 30 s) for this many image subscribers before sending")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.rate < 0:
        parser.error("--rate must be >= 0")
    return args


def main(argv=None) -> int:
    import rclpy
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from lapx_ros.ros.convert import to_compressed_msg, to_image_msg
    from lapx_ros.ros.messages import sibling_topic

    argv = sys.argv[1:] if argv is None else argv
    ros_args = argv[argv.index("--ros-args"):] if "--ros-args" in argv else []
    args = parse_args(argv[:len(argv) - len(ros_args)])
    try:
        source = FrameSource(args.source, args.size)
    except ValueError as exc:
        print(f"lapx-replay: {exc}", file=sys.stderr)
        return 2
    rclpy.init(args=["lapx_replay", *ros_args])
    node = rclpy.create_node("lapx_replay")
    qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE) if args.reliable \
        else qos_profile_sensor_data
    topic = args.topic.rstrip("/")
    raw_pub = node.create_publisher(Image, topic, qos) if args.transport != "compressed" else None
    jpeg_pub = (node.create_publisher(CompressedImage, topic + "/compressed", qos)
                if args.transport != "raw" else None)
    info_pub = node.create_publisher(CameraInfo, sibling_topic(topic, "camera_info"), qos)
    image_pubs = [p for p in (raw_pub, jpeg_pub) if p is not None]
    deadline = time.monotonic() + 30.0
    while (sum(p.get_subscription_count() for p in image_pubs) < args.wait_subscribers
           and time.monotonic() < deadline):
        time.sleep(0.05)
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    sent, started = 0, time.monotonic()
    next_time = started
    try:
        for frame in source.frames(args.loop):
            if args.count and sent >= args.count:
                break
            header = Image().header
            header.stamp = node.get_clock().now().to_msg()
            header.frame_id = args.frame_id
            if raw_pub:
                raw_pub.publish(to_image_msg(frame, args.encoding, header))
            if jpeg_pub:
                jpeg_pub.publish(to_compressed_msg(frame, args.format, header))
            info_pub.publish(camera_info_for(frame.shape[1], frame.shape[0], header))
            sent += 1
            if not args.quiet and sent % 100 == 0:
                print(f"lapx-replay: {sent} frames", flush=True)
            next_time += period
            time.sleep(max(0.0, next_time - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        elapsed = max(time.monotonic() - started, 1e-6)
        if not args.quiet:
            print(f"lapx-replay: sent {sent} frames in {elapsed:.1f} s ({sent / elapsed:.1f} Hz)",
                  flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
