"""rosbag2 files (sqlite3 .db3 and .mcap) in and out, without a ROS install.

Bags are read and written with ``rosbags`` (pure Python); the messages themselves are
(de)serialized by rclpy, so a frame read from a bag is the very object a subscription
would have delivered, and the node's own conversions take it unchanged. Everything
that can go wrong with a file (missing, not a bag, truncated, corrupt, a message that
does not decode, a type this package cannot use) becomes a ``BagError`` whose text
names the bag, the topic and how far into the bag it happened, so that commands can
print one line and exit instead of a traceback.

``frame_events`` puts a bag's messages in the order in which a frame's companions
(its depth image, its CameraInfo) are known before the frame is answered: lapx-replay
waits for the node's answer at that point, lapx-bag-poses processes the frame there,
so both see the same inputs for every frame.
"""
from __future__ import annotations

import collections
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POSES = "lapx_ros/msg/HumanPoseArray"
MARKERS = "visualization_msgs/msg/MarkerArray"
# What lapx-replay publishes from a bag: the camera's own messages.
CAMERA_TYPES = (IMAGE, COMPRESSED_IMAGE, CAMERA_INFO)
# Message types read or written here -> (module, class) of their rclpy message.
MESSAGE_CLASSES = {
    IMAGE: ("sensor_msgs.msg", "Image"),
    COMPRESSED_IMAGE: ("sensor_msgs.msg", "CompressedImage"),
    CAMERA_INFO: ("sensor_msgs.msg", "CameraInfo"),
    POSES: ("lapx_ros.msg", "HumanPoseArray"),
    MARKERS: ("visualization_msgs.msg", "MarkerArray"),
}
# Image encodings of depth (REP 118 and what drivers send): not a frame to answer.
DEPTH_ENCODINGS = ("16uc1", "32fc1", "mono16")
OWN_MESSAGES = ("Keypoint", "PersonPose", "HumanPoseArray")  # msg/, in dependency order
STORAGES = ("sqlite3", "mcap")
STORAGE_SUFFIXES = (".db3", ".mcap")
# rosbag2 metadata version written: 8 is read by Jazzy and every later distribution.
WRITE_VERSION = 8
# How far (recording time) past a frame its companions are looked for, at most.
FRAME_LOOKAHEAD_NS = 1_000_000_000


class BagError(ValueError):
    """A bag that cannot be used as asked, with the reason in words."""


def type_short_name(msgtype: str) -> str:
    return msgtype.rsplit("/", 1)[-1]


def full_type_name(name: str) -> str:
    """``Image`` or ``sensor_msgs/Image`` -> ``sensor_msgs/msg/Image`` (camera types only
    for short names)."""
    if "/" not in name:
        for msgtype in CAMERA_TYPES:
            if type_short_name(msgtype).lower() == name.lower():
                return msgtype
        raise BagError(f"unknown message type {name!r}: use one of "
                       f"{', '.join(type_short_name(t) for t in CAMERA_TYPES)} or a full name")
    package, _, short = name.partition("/")
    return name if "/msg/" in name else f"{package}/msg/{short.rpartition('/')[-1]}"


def message_class(msgtype: str):
    """The rclpy class of ``msgtype``; BagError for a type this package does not read."""
    import importlib

    if msgtype not in MESSAGE_CLASSES:
        raise BagError(f"message type {msgtype} is not one lapx_ros reads from bags "
                       f"({', '.join(MESSAGE_CLASSES)})")
    module, name = MESSAGE_CLASSES[msgtype]
    return getattr(importlib.import_module(module), name)


def is_depth(msg) -> bool:
    """A depth image (16UC1 / 32FC1 Image, or image_transport's compressedDepth)."""
    if hasattr(msg, "encoding"):
        return msg.encoding.lower() in DEPTH_ENCODINGS
    return "compresseddepth" in getattr(msg, "format", "").lower()


def stamp_ns(msg) -> int:
    stamp = msg.header.stamp
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def shifted_stamp(msg, shift_ns: int) -> None:
    """Moves ``msg``'s header stamp by ``shift_ns`` nanoseconds (in place)."""
    if shift_ns:
        total = stamp_ns(msg) + shift_ns
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(total, 1_000_000_000)


# ----------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class TopicInfo:
    name: str
    msgtype: str
    count: int


@dataclass
class BagMessage:
    """One message of a bag: ``index`` counts from 0 within its topic, ``log_ns`` is
    when the recorder received it, ``offset_s`` how far into the bag that was."""

    topic: str
    msgtype: str
    index: int
    log_ns: int
    offset_s: float
    msg: object

    def where(self) -> str:
        return f"message {self.index} of {self.topic} at +{self.offset_s:.3f} s"


def _files(path: Path) -> list[Path]:
    return list(path.iterdir()) if path.is_dir() else [path]


def _open_hint(path: Path, exc: BaseException) -> str:
    """What an error opening ``path`` most likely means, in words, with the file sizes
    and, for an MCAP file, where it breaks off."""
    text = str(exc).lower()
    sizes = ", ".join(f"{p.name} {p.stat().st_size} bytes" for p in _files(path) if p.suffix in STORAGE_SUFFIXES)
    mcap = [p for p in _files(path) if p.suffix == ".mcap"]
    if mcap:
        where = mcap_break(mcap[0])
        if where:
            return (f": {mcap[0].name} {where}; MCAP tools can rewrite the readable part into a "
                    "complete file (mcap recover)")
    if "malformed" in text or "not a database" in text:
        return f" ({sizes}): the SQLite file is damaged or cut short"
    return f" ({sizes})" if sizes else ""


# MCAP (https://mcap.dev/spec): magic, then records of opcode (1 byte), length (uint64 LE)
# and content; a chunk's content holds records of its own. Enough of it to say where a
# file that rosbags cannot open breaks off.
MCAP_MAGIC = b"\x89MCAP0\r\n"
MCAP_FOOTER, MCAP_CHANNEL, MCAP_MESSAGE, MCAP_CHUNK = 0x02, 0x04, 0x05, 0x06


def _mcap_records(data: bytes):
    """(offset, opcode, content) of the complete records in ``data``, then (offset,
    None, None) where an incomplete one starts, if any."""
    import struct

    pos = 0
    while pos < len(data):
        if pos + 9 > len(data):
            yield pos, None, None
            return
        (length,) = struct.unpack_from("<Q", data, pos + 1)
        if pos + 9 + length > len(data):
            yield pos, None, None
            return
        yield pos, data[pos], data[pos + 9:pos + 9 + length]
        pos += 9 + length


def mcap_break(path: Path) -> str:
    """Where an MCAP file stops being readable, in words ("" when it is whole): the byte
    and the last message before it (topic, index, time into the recording)."""
    import struct

    channels: dict[int, str] = {}
    counts: collections.Counter = collections.Counter()
    first = last = None
    size = path.stat().st_size

    def read_records(data: bytes, base: int, in_chunk: bool):
        nonlocal first, last
        for offset, op, content in _mcap_records(data):
            if op is None:
                return base + offset
            if op == MCAP_FOOTER and not in_chunk:
                return None
            if op == MCAP_CHANNEL:
                channel, _ = struct.unpack_from("<HH", content)
                (length,) = struct.unpack_from("<I", content, 4)
                channels[channel] = content[8:8 + length].decode("utf-8", "replace")
            elif op == MCAP_MESSAGE:
                channel, _, log_time = struct.unpack_from("<HIQ", content)
                topic = channels.get(channel, f"channel {channel}")
                first = log_time if first is None else first
                last = (topic, counts[topic], log_time)
                counts[topic] += 1
            elif op == MCAP_CHUNK and not in_chunk:
                (length,) = struct.unpack_from("<I", content, 28)
                compression = content[32:32 + length].decode("ascii", "replace")
                (records_size,) = struct.unpack_from("<Q", content, 32 + length)
                records = content[40 + length:40 + length + records_size]
                if compression:
                    try:
                        from rosbags.rosbag2.storage_mcap import decompress

                        uncompressed, crc = struct.unpack_from("<QI", content, 16)
                        records = decompress(records, compression, uncompressed, crc)
                    except Exception:  # a chunk that does not unpack: the break is here
                        return base + offset
                broken = read_records(records, base + offset, True)
                if broken is not None:
                    return base + offset
        return None if in_chunk else base + len(data)

    try:
        data = path.read_bytes()
        if not data.startswith(MCAP_MAGIC):
            return f"does not start like an MCAP file ({size} bytes)"
        broken = read_records(data[len(MCAP_MAGIC):], len(MCAP_MAGIC), False)
    except (OSError, struct.error, UnicodeError) as exc:
        return f"cannot be scanned: {_reason(exc)}"
    if broken is None:
        return ""
    where = f"breaks off at byte {broken} of {size} (a recording cut short, or damaged there)"
    if last is None:
        return where + ", before its first message"
    topic, index, log_time = last
    return (f"{where}, after message {index} of {topic} at +{(log_time - first) / 1e9:.3f} s "
            f"({sum(counts.values())} messages readable before it)")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text if isinstance(exc, BagError) else f"{type(exc).__name__}: {text}"


class BagReader:
    """A rosbag2 bag (a folder with metadata.yaml, or a single .db3 / .mcap file) opened
    for reading; ``messages`` yields deserialized messages of chosen topics in
    recording order."""

    def __init__(self, path: str | os.PathLike):
        from rosbags.rosbag2 import Reader

        self.path = Path(path)
        self.notes: list[str] = []  # what the reader had to make of the bag, for the user
        if not self.path.exists():
            raise BagError(f"{self.path}: no such bag (a rosbag2 folder, or a .db3 or .mcap file)")
        storage_path = self._storage_path()
        try:
            self._reader = Reader(storage_path)
            self._reader.open()
            connections = list(self._reader.connections)
            self.start_ns = self._reader.start_time if self._reader.message_count else 0
        except Exception as exc:  # rosbags, apsw, zstd, lz4, yaml: all mean "not a usable bag"
            before = "".join(f"{note}; " for note in self.notes)
            raise BagError(f"{before}{storage_path}: not a readable rosbag2 bag: {_reason(exc)}"
                           f"{_open_hint(storage_path, exc)}") from None
        self.storage = "mcap" if any(p.suffix == ".mcap" for p in _files(storage_path)) else "sqlite3"
        self._connections = connections
        counts: dict[tuple[str, str], int] = collections.Counter()
        for c in connections:
            counts[(c.topic, c.msgtype)] += c.msgcount
        self.topics = {topic: TopicInfo(topic, msgtype, n) for (topic, msgtype), n in counts.items()}

    def _storage_path(self) -> Path:
        """The bag folder, or its one storage file when metadata.yaml is missing (a
        recorder that was stopped before it could write it leaves such a folder)."""
        if not self.path.is_dir() or (self.path / "metadata.yaml").is_file():
            return self.path
        files = sorted(p for p in self.path.iterdir() if p.suffix in STORAGE_SUFFIXES)
        if len(files) != 1:
            raise BagError(f"{self.path}: no metadata.yaml, and {len(files)} storage files "
                           f"({', '.join(STORAGE_SUFFIXES)}) instead of one: not a rosbag2 bag")
        self.notes.append(f"{self.path} has no metadata.yaml (was the recording stopped before it "
                          f"ended?): reading {files[0].name} on its own")
        return files[0]

    def close(self) -> None:
        try:
            self._reader.close()
        except Exception:  # closing a broken bag must not hide the error being reported
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self) -> str:
        """The bag's topics, one a line, for listings and error messages."""
        return "\n".join(f"  {t.name}  {t.msgtype}  ({t.count} messages)"
                         for t in sorted(self.topics.values(), key=lambda t: t.name)) or "  (no topics)"

    def messages(self, topics):
        """BagMessage of every message of ``topics`` (names in the bag), in recording
        order. BagError names the topic and offset of a message that does not decode,
        or the last good one when the storage itself breaks."""
        from rclpy.serialization import deserialize_message

        wanted = set(topics)
        connections = [c for c in self._connections if c.topic in wanted]
        classes = {c.topic: message_class(c.msgtype) for c in connections}
        counts: collections.Counter = collections.Counter()
        last = "before the first message"
        stream = self._reader.messages(connections=connections) if connections else iter(())
        while True:
            try:
                connection, log_ns, raw = next(stream)
            except StopIteration:
                return
            except Exception as exc:  # truncated or corrupt storage
                raise BagError(f"{self.path}: the bag breaks off {last}: {_reason(exc)}") from None
            index = counts[connection.topic]
            counts[connection.topic] += 1
            offset = (log_ns - self.start_ns) / 1e9
            item = BagMessage(connection.topic, connection.msgtype, index, log_ns, offset, None)
            try:
                item.msg = deserialize_message(bytes(raw), classes[connection.topic])
            except Exception as exc:
                raise BagError(f"{self.path}: {item.where()} ({connection.msgtype}, {len(raw)} bytes) "
                               f"does not decode: {_reason(exc)}") from None
            last = f"after {item.where()}"
            yield item


# ------------------------------------------------------------------------------ order
def frame_events(messages, is_frame):
    """(kind, BagMessage) in the order frames are to be answered: ``("message", m)`` for
    every message, in recording order except that the messages recorded after a frame
    but stamped no later than it (its depth image, its CameraInfo), up to the next
    frame or FRAME_LOOKAHEAD_NS of recording, follow it at once; then ``("answer",
    frame)``, the point from which the frame has all it will get. A recorder writes
    what arrives first first, and a registered depth image is made after its colour
    frame, so it often comes later."""
    held: list = []
    frame = None
    for item in messages:
        if frame is not None and (is_frame(item) or item.log_ns - frame.log_ns > FRAME_LOOKAHEAD_NS):
            yield "answer", frame
            yield from (("message", m) for m in held)
            held, frame = [], None
        if is_frame(item):
            frame = item
            yield "message", item
        elif frame is not None and stamp_ns(item.msg) > stamp_ns(frame.msg):
            held.append(item)
        else:
            yield "message", item
    if frame is not None:
        yield "answer", frame
    yield from (("message", m) for m in held)


# ----------------------------------------------------------------------------- writing
def message_definitions_folder() -> Path:
    """The folder of this package's .msg files: the installed share/lapx_ros/msg (what
    the generated Python classes were built from), else msg/ of a source checkout."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("lapx_ros")) / "msg"
        if (installed / "HumanPoseArray.msg").is_file():
            return installed
    except Exception:  # not installed through ament
        pass
    return Path(__file__).resolve().parents[2] / "msg"


def typestore():
    """rosbags' Jazzy typestore with this package's messages registered from their
    .msg files, so bags written here carry the definitions and the type hashes ROS
    tools expect."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    folder = message_definitions_folder()
    types = {}
    for name in OWN_MESSAGES:
        path = folder / f"{name}.msg"
        if not path.is_file():
            raise BagError(f"message definition {path} missing: cannot register lapx_ros/msg/{name}")
        types.update(get_types_from_msg(path.read_text(), f"lapx_ros/msg/{name}"))
    store.register(types)
    return store


class BagWriter:
    """A new bag written to a hidden folder beside ``path`` and renamed to ``path`` by
    ``commit``; ``abort`` (also on leaving a ``with`` block by an exception) removes
    it: a bag that is there is complete."""

    def __init__(self, path: str | os.PathLike, storage: str = "sqlite3"):
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(f"storage must be one of {STORAGES}, got {storage!r}")
        if self.path.exists():
            raise BagError(f"{self.path} exists already: remove it or choose another name")
        if not self.path.parent.is_dir():
            raise BagError(f"{self.path.parent}: no such folder")
        self._staging = self.path.parent / f".{self.path.name}.partial-{os.getpid()}"
        shutil.rmtree(self._staging, ignore_errors=True)
        self._staging.mkdir()
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self._staging / self.path.name, version=WRITE_VERSION,
                              storage_plugin=plugin)
        self._writer.open()
        self._store = typestore()
        self._connections: dict[str, object] = {}
        self.counts: collections.Counter = collections.Counter()
        self.done = False

    def write(self, topic: str, msgtype: str, log_ns: int, msg) -> None:
        """Serializes ``msg`` (an rclpy message of ``msgtype``) onto ``topic``."""
        from rclpy.serialization import serialize_message

        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self._store)
            self._connections[topic] = connection
        self._writer.write(connection, log_ns, serialize_message(msg))
        self.counts[topic] += 1

    def commit(self) -> Path:
        self._writer.close()
        os.replace(self._staging / self.path.name, self.path)
        self._staging.rmdir()
        self.done = True
        return self.path

    def abort(self) -> None:
        if self.done:
            return
        try:
            self._writer.abort()
        except Exception:  # the staging folder goes anyway
            pass
        shutil.rmtree(self._staging, ignore_errors=True)
        self.done = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None or not self.done:
            self.abort()


def with_log_time(item: BagMessage, shift_ns: int) -> BagMessage:
    """``item`` moved ``shift_ns`` later: its log time and its header stamp (a copy)."""
    import copy

    if not shift_ns:
        return item
    msg = copy.deepcopy(item.msg)
    shifted_stamp(msg, shift_ns)
    return replace(item, log_ns=item.log_ns + shift_ns, msg=msg)
