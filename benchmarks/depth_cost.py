"""What the depth path costs and how accurate it is (issue 15), and a picture of the 3D
markers the node publishes.

    .venv/bin/python -m benchmarks.depth_cost              # cost, accuracy, picture
    .venv/bin/python -m benchmarks.depth_cost --no-picture # without starting ROS processes
    .venv/bin/python -m benchmarks.depth_cost --pause-pattern 'lapx_ros[.](train|eval|export)|mediapipe|lever'

1. Cost per frame of everything the depth path adds to a frame, at 640x480 and 1280x720,
   one and five people: decoding the paired 16UC1 image (and compressedDepth PNG),
   pairing by stamp, the robust per-joint depth with back-projection, and filling the
   positions into the message (the message with depth minus the one without). Beside
   it, one call of the shipped network on a person crop, as the node makes per frame.
2. Accuracy on synthetic scenes of exact geometry (lapx_ros/testing/depth_scenes.py): a person on a
   tilted plane at 1-5 m in front of a wall, clean, and with sensor-like noise, random
   holes and a zero-depth shadow along one side of the body.
3. docs/depth_markers.png: the node (shipped model) in its own process, a real LSPET
   photo as the colour frame and a synthetic depth scene built around the person, the
   MarkerArray it publishes drawn with matplotlib (RViz cannot run here).

The figures go to stdout and, as the "Depth" section, into benchmarks/RESULTS.md
(harness.write_section: the other sections are left as they are).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from lapx_ros.layouts import MPII_16
from lapx_ros.runtime.camera import PinholeCamera
from lapx_ros.ros.convert import depth_from_message, encode_compressed_depth
from lapx_ros.runtime.depth import DepthSettings, DepthStream, torso_joints
from lapx_ros.testing.depth_scenes import TiltedPlane, body_mask, millimetres, person_scene
from lapx_ros.testing.harness import Pauser, write_section

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
PICTURE = REPO / "docs" / "depth_markers.png"
TORSO = torso_joints(MPII_16.joint_names)
SIZES = ((640, 480), (1280, 720))
# MPII-16 joints of a person standing facing the camera, in a 640x480 image.
BODY = np.array([
    [290, 420], [292, 370], [295, 310], [345, 310], [348, 370], [350, 420],
    [320, 310], [320, 210], [320, 190], [320, 150],
    [250, 300], [262, 250], [285, 210], [355, 210], [378, 250], [390, 300],
], np.float64)
WALL = 6.0


def camera_for(width: int, height: int) -> PinholeCamera:
    """A RealSense-like colour camera: about 69 degrees horizontal field of view."""
    f = 0.72 * width
    return PinholeCamera(f, f, (width - 1) / 2, (height - 1) / 2, width, height)


def people_pixels(width: int, height: int, count: int) -> np.ndarray:
    """(count, 16, 2) people side by side, scaled to the image."""
    scale = height / 480
    spread = np.linspace(-1, 1, count) * (0.3 * width if count > 1 else 0)
    base = (BODY - [320, 240]) * scale * (0.6 if count > 1 else 1.0) + [width / 2, height / 2]
    return np.stack([base + [dx, 0] for dx in spread])


def scene(width, height, people, plane, noise=None, seed=0):
    """float32 metres of ``people`` on ``plane`` before a wall; ``noise`` adds a sensor's
    faults: depth noise growing with distance squared, random holes, an edge shadow."""
    camera = camera_for(width, height)
    mask = np.zeros((height, width), bool)
    for pixels in people:
        mask |= body_mask((height, width), pixels, MPII_16.skeleton, TORSO, 22 * height / 480)
    depth = person_scene(camera, plane, mask, WALL)
    if noise:
        rng = np.random.default_rng(seed)
        depth = depth + rng.normal(0, 1, depth.shape).astype(np.float32) * np.float32(noise) * depth ** 2
        depth[rng.random(depth.shape) < 0.03] = np.nan  # holes
        shift = max(1, int(8 * width / 640))  # the projector's shadow left of each body
        shadow = mask[:, shift:] & ~mask[:, :-shift]
        depth[:, :-shift][shadow] = np.nan
    return depth, camera


def image_msg(mm: np.ndarray, stamp: float):
    return SimpleNamespace(encoding="16UC1", height=mm.shape[0], width=mm.shape[1], step=mm.shape[1] * 2,
                           is_bigendian=0, data=mm.tobytes(), header=stamp)


def compressed_msg(mm: np.ndarray):
    fmt, data = encode_compressed_depth(mm, png_level=1)
    return SimpleNamespace(format=fmt, data=data)


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def poses_of(pixels):
    from lapx_ros.runtime.estimator import Pose

    return [Pose(p, np.full(16, 0.9, np.float32), np.r_[p.min(0), p.max(0)], 0.9, i + 1)
            for i, p in enumerate(pixels)]


def measure_cost(repeat: int) -> list[dict]:
    from std_msgs.msg import Header

    from lapx_ros.ros.messages import pose_array_msg

    rows = []
    for width, height in SIZES:
        for count in (1, 5):
            pixels = people_pixels(width, height, count)
            depth, camera = scene(width, height, pixels, TiltedPlane(2.5, 0.3, -0.2))
            mm = millimetres(depth)
            raw, packed = image_msg(mm, 0.0), compressed_msg(mm)
            seen = np.ones(pixels.shape[:2], bool)
            stream = DepthStream(DepthSettings(), TORSO, depth_from_message, max_pixels=4096 * 4096)
            stamp = [0.0]

            def whole(msg):
                stamp[0] += 1.0
                stream.add(stamp[0], msg)
                return stream.locate(stamp[0], pixels, seen, camera, (width, height), 0.005, 0.0)[0]

            body = whole(raw)
            metres = depth_from_message(raw)
            poses = poses_of(pixels)
            header = Header(frame_id="camera")
            fill_with = median_ms(lambda: pose_array_msg(header, poses, width, height, MPII_16.joint_names,
                                                         MPII_16.skeleton, body), repeat)
            fill_without = median_ms(lambda: pose_array_msg(header, poses, width, height,
                                                            MPII_16.joint_names, MPII_16.skeleton), repeat)
            row = {
                "size": f"{width}x{height}", "people": count,
                "decode_16uc1": median_ms(lambda: depth_from_message(raw), repeat),
                "decode_png": median_ms(lambda: depth_from_message(packed), repeat),
                "pair": median_ms(lambda: (stream.add(stamp[0] + 0.5, raw),
                                           stream.buffer.take(stamp[0] + 0.5, 0.005)), repeat),
                "locate": median_ms(lambda: stream.estimator.locate(metres, pixels, seen, camera), repeat),
                "fill": fill_with, "fill_without": fill_without,
                "path_16uc1": median_ms(lambda: whole(raw), repeat),
                "path_png": median_ms(lambda: whole(packed), repeat),
                "png_kb": len(packed.data) / 1024,
            }
            # the message is built with or without depth: only the difference is the depth path's
            extra_fill = max(0.0, fill_with - fill_without)
            row["total_16uc1"] = row["path_16uc1"] + extra_fill
            row["total_png"] = row["path_png"] + extra_fill
            rows.append(row)
            print(f"{row['size']} {count} person(s): decode 16UC1 {row['decode_16uc1']:.2f} ms, "
                  f"PNG {row['decode_png']:.2f} ms ({row['png_kb']:.0f} KB), pair {row['pair']:.3f} ms, "
                  f"locate {row['locate']:.2f} ms, message {row['fill']:.2f} ms (without positions "
                  f"{row['fill_without']:.2f} ms); whole path "
                  f"{row['total_16uc1']:.2f} ms (16UC1) / {row['total_png']:.2f} ms (compressedDepth)")
    return rows


def network_ms(repeat: int) -> tuple[float, str]:
    """One call of the shipped network on a person crop (what the node runs per frame
    while following a person) and the backend's name."""
    from lapx_ros.runtime.engine import create_engine, default_model_path

    engine = create_engine(default_model_path(), "auto", 2, "auto")
    meta = engine.metadata
    batch = np.random.default_rng(0).random((1, 3, meta.input_height, meta.input_width)).astype(np.float32)
    engine.infer(batch)
    return median_ms(lambda: engine.infer(batch), repeat), engine.description


ACCURACY_CASES = [(z0, tilt, noise) for z0 in (1.0, 2.5, 5.0) for tilt in ((0.0, 0.0), (0.4, -0.3))
                  for noise in (None, 0.002)]


def measure_accuracy() -> list[dict]:
    rows = []
    for width, height in SIZES:
        pixels = people_pixels(width, height, 1)
        for z0, (tx, ty), noise in ACCURACY_CASES:
            plane = TiltedPlane(z0, tx, ty)
            errors, found = [], []
            for seed in range(5):
                depth, camera = scene(width, height, pixels, plane, noise, seed)
                stream = DepthStream(DepthSettings(), TORSO, depth_from_message)
                stream.add(1.0, image_msg(millimetres(depth), 1.0))
                body, _ = stream.locate(1.0, pixels, np.ones((1, 16), bool), camera, (width, height), 0.0, 0.0)
                truth = plane.points(camera, pixels[0])
                error = np.linalg.norm(body.positions[0] - truth, axis=1)
                errors += list(error[np.isfinite(error)] * 1000)
                found.append(np.isfinite(error).mean())
            row = {"size": f"{width}x{height}", "z0": z0, "tilt": f"{tx:+.1f}/{ty:+.1f}",
                   "noise": "clean" if noise is None else "noisy", "found": 100 * np.mean(found),
                   "median_mm": float(np.median(errors)), "p95_mm": float(np.percentile(errors, 95)),
                   "max_mm": float(np.max(errors))}
            rows.append(row)
            print(f"{row['size']} z0 {z0} m tilt {row['tilt']} {row['noise']}: joints with depth "
                  f"{row['found']:.0f} %, error median {row['median_mm']:.1f} mm, 95 % "
                  f"{row['p95_mm']:.1f} mm, max {row['max_mm']:.1f} mm")
    return rows


# ---------------------------------------------------------------------------- picture
def picture(photo_path: Path, out: Path) -> str:
    """Run the node with depth, send the photo and a scene built around its person, draw
    the MarkerArray it publishes; returns a line for the results. DDS as in the tests
    (test/conftest.py): this machine only, a domain of its own, the test runs' Fast DDS
    profile (shared memory large enough for these frames)."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 101 + 1))
    os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lapx_ros.testing.node_client import READY, PoseClient, node_command, unique_namespace
    from lapx_ros.testing.ros_processes import RosProcess
    from test_node_depth import DEPTH_TOPIC, PLANE, THICKNESS, WALL as SCENE_WALL, RgbdCamera

    from lapx_ros.runtime.engine import default_model_path

    image = cv2.imread(str(photo_path))
    image = cv2.resize(image, (image.shape[1] * 2, image.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    height, width = image.shape[:2]
    camera = PinholeCamera(1.1 * width, 1.1 * width, (width - 1) / 2, (height - 1) / 2, width, height)
    namespace = unique_namespace()
    node = RosProcess(*node_command(namespace, default_model_path(), f"depth_topic:={DEPTH_TOPIC}",
                                    "depth_wait:=0.5", "diagnostics_period:=0.2"))
    try:
        node.wait_for(READY, timeout=60)
        with PoseClient(namespace) as client:
            client.wait_for_node()
            rgbd = RgbdCamera(client, camera)
            rgbd.wait_connected(compressed=False)
            first = client.wait_pose(client.publish_image(image))
            person = first.people[0]
            pixels = np.array([(k.x - 0.5, k.y - 0.5) for k in person.keypoints])
            mask = body_mask((height, width), pixels, MPII_16.skeleton, TORSO, THICKNESS)
            depth = person_scene(camera, PLANE, mask, SCENE_WALL)
            for _ in range(5):  # a frame may go without depth (a late depth image): try again
                pose = rgbd.frame(image, depth)
                if any(np.isfinite(k.position.z) for k in pose.people[0].keypoints):
                    break
                print(f"a frame without 3D, sending it again: {node.lines[-1:]}")
            else:
                raise RuntimeError(f"no 3D in five frames: {node.lines[-5:]}")
            markers = client.wait(lambda: next((m for m in client.markers if m.markers
                                                and m.markers[0].header.stamp == pose.header.stamp), None), 5)
    finally:
        node.stop()
    joints = next(m for m in markers.markers if m.ns == "joints")
    bones = next(m for m in markers.markers if m.ns == "bones")
    points = np.array([(p.x, p.y, p.z) for p in joints.points])
    segments = np.array([(p.x, p.y, p.z) for p in bones.points]).reshape(-1, 2, 3)
    # the scene around the person as a point cloud, every 3rd pixel of a box around it
    x0, y0 = np.maximum(pixels.min(axis=0) - 40, 0).astype(int)
    x1, y1 = np.minimum(pixels.max(axis=0) + 40, [width - 1, height - 1]).astype(int)
    v, u = np.mgrid[y0:y1 + 1:3, x0:x1 + 1:3]
    cloud = camera.back_project(np.column_stack([u.ravel(), v.ravel()]), depth[v, u].ravel())
    colours = image[v, u].reshape(-1, 3)[:, ::-1] / 255.0
    fig = plt.figure(figsize=(14, 5.2))
    grid = fig.add_gridspec(1, 3, width_ratios=[1.1, 1.3, 1.0])
    ax_image = fig.add_subplot(grid[0])
    ax_image.imshow(image[:, :, ::-1])
    ax_image.plot(pixels[:, 0], pixels[:, 1], "r.", markersize=6)
    ax_image.set_title("colour frame (LSPET, x2), 2D keypoints")
    ax_image.axis("off")
    ax = fig.add_subplot(grid[1], projection="3d")
    # optical frame (x right, y down, z forward) drawn with z into the page and y up
    ax.scatter(cloud[:, 0], cloud[:, 2], -cloud[:, 1], c=colours, s=2, alpha=0.25, depthshade=False)
    for a, b in segments:
        ax.plot([a[0], b[0]], [a[2], b[2]], [-a[1], -b[1]], color="tab:orange", linewidth=3)
    ax.scatter(points[:, 0], points[:, 2], -points[:, 1], color="tab:red", s=30, depthshade=False)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("z, forward [m]")
    ax.set_zlabel("-y, up [m]")
    ax.set_box_aspect((np.ptp(cloud[:, 0]), np.ptp(cloud[:, 2]), np.ptp(cloud[:, 1])))
    ax.view_init(elev=18, azim=-62)
    ax.set_title("human_pose/markers (joints, bones) in the scene's point cloud")
    top = fig.add_subplot(grid[2])
    top.scatter(cloud[:, 0], cloud[:, 2], c=colours, s=2, alpha=0.3)
    for a, b in segments:
        top.plot([a[0], b[0]], [a[2], b[2]], color="tab:orange", linewidth=2)
    top.plot(points[:, 0], points[:, 2], "o", color="tab:red", markersize=4)
    top.set_xlabel("x [m]")
    top.set_ylabel("z, forward [m]")
    top.set_title(f"seen from above: the tilted plane at {PLANE.z0} m\nthe person is on, the wall at {SCENE_WALL} m")
    top.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    z = points[:, 2]
    text = (f"{len(points)} joints drawn from the published MarkerArray, z {z.min():.2f}-{z.max():.2f} m "
            f"(docs/{out.name})")
    print(text)
    return text


# ---------------------------------------------------------------------------- results
def idle_network_ms() -> float | None:
    """The network's one call on this machine when idle, from the "Model only" table
    benchmarks/run.py wrote into RESULTS.md (openvino f32, batch 1 p50), if there."""
    import re

    found = re.search(r"^\| openvino_f32 \| [^|]+ \| ([\d.]+)", RESULTS.read_text() if RESULTS.exists() else "",
                      re.M)
    return float(found.group(1)) if found else None


def markdown(cost, net, backend, accuracy, picture_line, paused) -> str:
    idle = idle_network_ms()
    reference = idle or net
    lines = [
        "## Depth",
        "",
        f"`benchmarks/depth_cost.py` ({time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"median of repeated runs in one process, one core; {paused}). "
        "Per frame, what the depth path adds: decoding the paired depth image, pairing by stamp, the "
        "robust per-joint depth with back-projection (`DepthStream.locate`: \"whole path\" measures "
        "them together), and the positions in the message (its difference to the message "
        "without them, which the node builds anyway). The network's one call per frame "
        f"(a person crop, shipped model, {backend}) for scale: {net:.1f} ms in this run"
        + (f", **{idle:.1f} ms** on the idle machine (\"Model only\" above, openvino f32), the figure the "
           "last column compares with." if idle else "."),
        "",
        "| frame | people | decode 16UC1 | decode compressedDepth PNG (size) | pair | locate | message (without positions) | "
        "whole path 16UC1 | whole path compressedDepth | 16UC1 path / network call |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in cost:
        lines.append(f"| {r['size']} | {r['people']} | {r['decode_16uc1']:.2f} | {r['decode_png']:.2f} "
                     f"({r['png_kb']:.0f} KB) | {r['pair']:.3f} | {r['locate']:.2f} | {r['fill']:.2f} ({r['fill_without']:.2f}) | "
                     f"**{r['total_16uc1']:.2f}** | {r['total_png']:.2f} | "
                     f"{100 * r['total_16uc1'] / reference:.0f} % |")
    lines += [
        "",
        "Times in ms. Accuracy on synthetic scenes (lapx_ros/testing/depth_scenes.py: a person on a plane "
        "Z = z0 + tilt_x X + tilt_y Y before a wall at 6 m; 16UC1 millimetres; noisy = "
        "Gaussian depth noise 0.002 z^2, 3 % random holes and an 8 px zero-depth shadow "
        "along the body's left edge, five seeds each). Error: 3D distance of each joint with "
        "depth to the true point of the surface at its pixel.",
        "",
        "| frame | z0 [m] | tilt x/y | depth | joints with depth | error median [mm] | 95 % | max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in accuracy:
        lines.append(f"| {r['size']} | {r['z0']:.1f} | {r['tilt']} | {r['noise']} | {r['found']:.0f} % | "
                     f"{r['median_mm']:.1f} | {r['p95_mm']:.1f} | {r['max_mm']:.1f} |")
    if picture_line:
        lines += ["", f"Picture: {picture_line}.", "", "![3D markers](../docs/depth_markers.png)"]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=100, help="runs per timing (median)")
    p.add_argument("--no-picture", action="store_true", help="skip the node run and the picture")
    p.add_argument("--photo", type=Path, default=REPO.parent / "shared" / "data" / "lspet" / "images" / "im09006.jpg")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    p.add_argument("--pause-pattern", help="SIGSTOP processes whose command line matches this regex "
                                           "while timing (other work on a shared machine)")
    args = p.parse_args()
    pauser = Pauser(pattern=args.pause_pattern)
    with pauser.paused():
        cost = measure_cost(args.repeat)
        net, backend = network_ms(args.repeat)
    paused = "others paused while timing" if pauser.enabled else "other work running beside it"
    print(f"network, one call: {net:.1f} ms ({backend})")
    accuracy = measure_accuracy()
    picture_line = ""
    if not args.no_picture:
        picture_line = picture(args.photo, PICTURE)
    text = markdown(cost, net, backend, accuracy, picture_line, paused)
    if not args.no_write:
        write_section(RESULTS, "Depth", "benchmarks/depth_cost.py", text)
        print(f"wrote the Depth section of {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
