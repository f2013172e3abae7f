"""lapx-replay: publish a video file, an image folder, a webcam or a rosbag2 bag as a camera would.

Each frame goes out as sensor_msgs/Image (any encoding the node reads) and/or
CompressedImage on ``<topic>/compressed``, stamped when sent, with a plausible
CameraInfo beside it, at a fixed rate, optionally looping. It lets the node, the
demo and the tests run on real footage without a camera driver.

With ``--depth`` a depth stream goes out beside the colour one, as an RGB-D camera's
depth registered to its colour image: 16UC1 in millimetres (and/or image_transport's
compressedDepth PNG), with each colour frame's stamp and a CameraInfo of its own.

With ``--bag`` a recording is played back instead (lapx_ros/ros/bag_play.py): its
camera topics with their recorded stamps, /clock, paced as recorded, faster, or as fast
as the pose node answers.
"""
from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from lapx_ros.ros import bag_play
from lapx_ros.ros.convert import COMPRESSED_FORMATS, OUTPUT_ENCODINGS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DEPTH_TOPIC = "camera/aligned_depth_to_color/image_raw"
DEPTH_TRANSPORTS = ("raw", "compressedDepth", "both")
PLANE_PREFIX = "plane:"
MAX_MILLIMETRES = np.iinfo(np.uint16).max


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


class DepthFileError(ValueError):
    """A depth file that cannot be published (found while replaying, not at start)."""


class DepthSource:
    """Depth in millimetres (uint16) for each colour frame, so the depth path can be
    tried without an RGB-D camera: 16-bit PNGs from a folder (name order, repeated when
    there are fewer than colour frames) or one file, or ``plane:METRES``, a flat wall
    facing the camera at that distance. Images are resized to the colour frame with
    the nearest pixel, never blended: a blend of a person and a wall is neither."""

    def __init__(self, spec: str):
        self.spec = spec
        self.plane_mm: int | None = None
        self._images: list[Path] = []
        if spec.startswith(PLANE_PREFIX):
            try:
                metres = float(spec[len(PLANE_PREFIX):])
            except ValueError:
                raise ValueError(f"{spec}: the plane's distance must be a number of metres") from None
            if not 0 < metres * 1000 <= MAX_MILLIMETRES:
                raise ValueError(f"{spec}: the plane's distance must be in "
                                 f"(0, {MAX_MILLIMETRES / 1000}] m")
            self.plane_mm = int(round(metres * 1000))
            return
        path = Path(spec)
        if path.is_dir():
            self._images = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
            if not self._images:
                raise ValueError(f"no .png depth images in folder {spec}")
        elif path.is_file() and path.suffix.lower() == ".png":
            self._images = [path]
        else:
            raise ValueError(f"{spec}: not a folder or file of 16-bit PNGs, "
                             f"nor {PLANE_PREFIX}METRES")

    def depth_for(self, index: int, width: int, height: int) -> np.ndarray:
        """The (height, width) uint16 depth image to go with colour frame ``index``."""
        if self.plane_mm is not None:
            return np.full((height, width), self.plane_mm, np.uint16)
        path = self._images[index % len(self._images)]
        depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if depth is None or depth.dtype != np.uint16 or depth.ndim != 2:
            raise DepthFileError(f"{path}: not a single-channel 16-bit PNG (depth in millimetres)")
        if depth.shape != (height, width):
            depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
        return depth


def depth_image_msg(depth_mm: np.ndarray, header):
    """A 16UC1 sensor_msgs/Image (REP 118: millimetres, 0 = no depth)."""
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header = header
    msg.height, msg.width = depth_mm.shape
    msg.encoding, msg.is_bigendian, msg.step = "16UC1", 0, depth_mm.shape[1] * 2
    msg.data = np.ascontiguousarray(depth_mm, "<u2").tobytes()
    return msg


def compressed_depth_msg(depth_mm: np.ndarray, header):
    """The same depth as image_transport's compressedDepth transport sends it (PNG)."""
    from sensor_msgs.msg import CompressedImage

    from lapx_ros.ros.convert import encode_compressed_depth

    msg = CompressedImage()
    msg.header = header
    msg.format, msg.data = encode_compressed_depth(depth_mm)
    return msg


class DepthSender:
    """Publishes one depth image (raw and/or compressedDepth) and its CameraInfo."""

    def __init__(self, node, args, qos):
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        from lapx_ros.ros.messages import sibling_topic

        topic = args.depth_topic.rstrip("/")
        transport = args.depth_transport
        self.raw_pub = (node.create_publisher(Image, topic, qos)
                        if transport != "compressedDepth" else None)
        self.compressed_pub = (node.create_publisher(CompressedImage, topic + "/compressedDepth", qos)
                               if transport != "raw" else None)
        self.info_pub = node.create_publisher(CameraInfo, sibling_topic(topic, "camera_info"), qos)

    def __call__(self, depth_mm: np.ndarray, header) -> None:
        if self.raw_pub:
            self.raw_pub.publish(depth_image_msg(depth_mm, header))
        if self.compressed_pub:
            self.compressed_pub.publish(compressed_depth_msg(depth_mm, header))
        self.info_pub.publish(camera_info_for(depth_mm.shape[1], depth_mm.shape[0], header))


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
    parser.add_argument("source", nargs="?",
                        help="video file, image folder or file, or camera index / /dev/videoN")
    parser.add_argument("--topic", action="append", metavar="TOPIC",
                        help="Image topic (default camera/image_raw). With --bag: a topic of the bag to "
                             "publish, NAME or NAME:=NEW_NAME to remap it (repeatable; default: every "
                             "Image, CompressedImage and CameraInfo topic)")
    parser.add_argument("--rate", default=None,
                        help="frames per second (default 10; 0 = as fast as possible). With --bag: speed "
                             "factor (default 1 = as recorded, 2 = twice as fast, 0 = as fast as "
                             f"possible) or '{bag_play.ANSWER}': each frame once the node's pose for "
                             "the previous one came back")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--count", type=int, default=0, help="stop after this many frames (0 = no limit)")
    parser.add_argument("--encoding", default="bgr8", choices=OUTPUT_ENCODINGS)
    parser.add_argument("--transport", default="raw", choices=("raw", "compressed", "both"))
    parser.add_argument("--format", default="jpeg", choices=COMPRESSED_FORMATS,
                        help="CompressedImage format")
    parser.add_argument("--frame-id", default="camera_optical_frame")
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), help="resize frames")
    parser.add_argument("--reliable", action="store_true", help="reliable QoS (default: sensor data)")
    parser.add_argument("--history", type=int, default=0,
                        help="publisher history depth (keep last); 0 = 1 when reliable, the sensor-data "
                             "profile's 5 otherwise (drivers: usb_cam 100, v4l2_camera 10)")
    parser.add_argument("--preload", type=int, default=0, metavar="N",
                        help="read the first N frames and convert them once, then cycle them: a steady "
                             "rate at any size, as a camera driver in C++ would send (0 = read as sent)")
    parser.add_argument("--wait-subscribers", type=int, default=0,
                        help="wait (up to 30 s) for this many image subscribers before sending")
    parser.add_argument("--settle", type=float, default=0.0, metavar="SECONDS",
                        help="then wait this long (a node with qos_reliability auto subscribes again "
                             "once it has seen a reliable camera)")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--stamps-out", metavar="FILE",
                        help="write each sent frame's index and header stamp (seconds), a line each: what a "
                             "benchmark needs to score what the node published for which frame")
    depth = parser.add_argument_group(
        "depth", "an RGB-D camera's depth registered to the colour image: 16UC1 in millimetres, "
                 "stamped like its colour frame, with a CameraInfo on the sibling camera_info topic")
    depth.add_argument("--depth", metavar="SOURCE",
                       help="a folder of 16-bit PNGs in millimetres (0 = no depth; taken in name "
                            "order, one per colour frame, repeated when fewer), one such PNG, or "
                            "plane:METRES for a flat wall at that distance (e.g. plane:2.5); "
                            "resized to the colour frame with the nearest pixel")
    depth.add_argument("--depth-topic", default=DEPTH_TOPIC, help="depth Image topic")
    depth.add_argument("--depth-transport", default="raw", choices=DEPTH_TRANSPORTS,
                       help="raw Image, compressedDepth (PNG, on <depth-topic>/compressedDepth "
                            "as image_transport names it), or both")
    depth.add_argument("--depth-first", action="store_true",
                       help="publish each depth image before its colour frame (default: after)")
    bag = parser.add_argument_group(
        "bag", "play a rosbag2 bag (a folder with metadata.yaml, or a .db3 / .mcap file) instead: "
               "its camera topics with their recorded stamps, and /clock for use_sim_time")
    bag.add_argument("--bag", metavar="PATH", help="the bag to play")
    bag.add_argument("--type", action="append", metavar="TYPE",
                     help="also publish every topic of this type (Image, CompressedImage, CameraInfo)")
    bag.add_argument("--answer-topic", default="/human_pose",
                     help=f"with --rate {bag_play.ANSWER}: where the node's HumanPoseArray answers come")
    bag.add_argument("--answer-timeout", type=float, default=10.0, metavar="SECONDS",
                     help=f"with --rate {bag_play.ANSWER}: go on after this long without an answer")
    bag.add_argument("--best-effort", action="store_true",
                     help="best-effort publishers (default: reliable, which repairs large frames)")
    bag.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    bag.add_argument("--list", action="store_true", help="print the bag's topics and exit")
    args = parser.parse_args(argv)
    if args.bag is not None:
        return _bag_args(parser, args)
    if args.source is None:
        parser.error("a SOURCE (video, folder, image, camera) or --bag PATH is needed")
    bag_only = [name for name in ("type", "list", "best_effort", "no_clock") if getattr(args, name)]
    if bag_only:
        parser.error(f"--{bag_only[0].replace('_', '-')} needs --bag")
    if args.topic and len(args.topic) > 1:
        parser.error("--topic once (one Image topic), except with --bag")
    args.topic = args.topic[0] if args.topic else "camera/image_raw"
    try:
        args.rate = 10.0 if args.rate is None else float(args.rate)
    except ValueError:
        parser.error(f"--rate {args.rate!r}: frames per second")
    if args.rate < 0:
        parser.error("--rate must be >= 0")
    if args.history < 0 or args.preload < 0:
        parser.error("--history and --preload must be >= 0")
    if args.depth is None and (args.depth_topic != DEPTH_TOPIC or args.depth_transport != "raw"
                               or args.depth_first):
        parser.error("--depth-topic, --depth-transport and --depth-first need --depth")
    return args


# Options that say how to turn images into messages: a bag's messages are already made.
VIDEO_ONLY = ("encoding", "transport", "format", "frame_id", "size", "preload", "depth", "depth_topic",
              "depth_transport", "depth_first")


def _bag_args(parser, args):
    defaults = {name: parser.get_default(name) for name in VIDEO_ONLY}
    if args.source is not None:
        parser.error("give either a SOURCE or --bag, not both")
    changed = [name for name, value in defaults.items() if getattr(args, name) != value]
    if changed:
        parser.error(f"--{changed[0].replace('_', '-')} does not apply to --bag (its messages are "
                     "published as recorded)")
    args.rate = "1" if args.rate is None else args.rate
    if args.history < 0 or args.answer_timeout <= 0 or args.count < 0:
        parser.error("--history and --count must be >= 0, --answer-timeout > 0")
    return args


def main(argv=None) -> int:
    import rclpy
    from rclpy.duration import Duration
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from lapx_ros.ros.convert import to_compressed_msg, to_image_msg
    from lapx_ros.ros.messages import sibling_topic

    argv = sys.argv[1:] if argv is None else argv
    ros_args = argv[argv.index("--ros-args"):] if "--ros-args" in argv else []
    args = parse_args(argv[:len(argv) - len(ros_args)])
    if args.bag is not None:
        return bag_play.play_bag(args, ros_args)
    try:
        source = FrameSource(args.source, args.size)
        depth_source = DepthSource(args.depth) if args.depth else None
    except ValueError as exc:
        print(f"lapx-replay: {exc}", file=sys.stderr)
        return 2
    rclpy.init(args=["lapx_replay", *ros_args])
    node = rclpy.create_node("lapx_replay")
    qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE) if args.reliable \
        else copy.copy(qos_profile_sensor_data)
    if args.history:
        qos.depth = args.history
    topic = args.topic.rstrip("/")
    raw_pub = node.create_publisher(Image, topic, qos) if args.transport != "compressed" else None
    jpeg_pub = (node.create_publisher(CompressedImage, topic + "/compressed", qos)
                if args.transport != "raw" else None)
    info_pub = node.create_publisher(CameraInfo, sibling_topic(topic, "camera_info"), qos)
    depth_send = DepthSender(node, args, qos) if depth_source else None
    image_pubs = [p for p in (raw_pub, jpeg_pub) if p is not None]
    deadline = time.monotonic() + 30.0
    while (sum(p.get_subscription_count() for p in image_pubs) < args.wait_subscribers
           and time.monotonic() < deadline):
        time.sleep(0.05)
    time.sleep(args.settle)
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    sent, started, status = 0, time.monotonic(), 0
    next_time = started
    frames = source.frames(args.loop)
    raw_messages = {}  # preloaded frame index -> its Image, converted once
    if args.preload:
        preloaded = list(itertools.islice(frames, args.preload))
        frames = itertools.cycle(preloaded) if args.loop else iter(preloaded)
        if raw_pub:
            raw_messages = {id(f): to_image_msg(f, args.encoding, Image().header) for f in preloaded}
    stamps_out = open(args.stamps_out, "w") if args.stamps_out else None
    try:
        for frame in frames:
            if args.count and sent >= args.count:
                break
            header = Image().header
            header.stamp = node.get_clock().now().to_msg()
            if stamps_out is not None:
                stamps_out.write(f"{sent} {header.stamp.sec + header.stamp.nanosec * 1e-9:.9f}\n")
            header.frame_id = args.frame_id
            depth = (depth_source.depth_for(sent, frame.shape[1], frame.shape[0])
                     if depth_source else None)
            if depth is not None and args.depth_first:
                depth_send(depth, header)
            if raw_pub:
                msg = raw_messages.get(id(frame))
                if msg is None:
                    msg = to_image_msg(frame, args.encoding, header)
                msg.header = header
                raw_pub.publish(msg)
            if jpeg_pub:
                jpeg_pub.publish(to_compressed_msg(frame, args.format, header))
            info_pub.publish(camera_info_for(frame.shape[1], frame.shape[0], header))
            if depth is not None and not args.depth_first:
                depth_send(depth, header)
            sent += 1
            if not args.quiet and sent % 100 == 0:
                print(f"lapx-replay: {sent} frames", flush=True)
            next_time += period
            time.sleep(max(0.0, next_time - time.monotonic()))
    except KeyboardInterrupt:
        pass
    except DepthFileError as exc:
        print(f"lapx-replay: {exc}", file=sys.stderr)
        status = 2
    finally:
        if stamps_out is not None:
            stamps_out.close()
        elapsed = max(time.monotonic() - started, 1e-6)
        if args.reliable:  # let the last frames be repaired before the writer goes away
            for pub in image_pubs:
                pub.wait_for_all_acked(Duration(seconds=2.0))
        if not args.quiet:
            print(f"lapx-replay: sent {sent} frames in {elapsed:.1f} s ({sent / elapsed:.1f} Hz)",
                  flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
