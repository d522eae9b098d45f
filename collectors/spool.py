"""The disk spool: batches the database refused, kept on disk until they are replayed.

One batch is one segment file ``NNNNNNNNNNNN.seg`` in the spool directory, written whole to a
temporary name, fsync'd, renamed into place and the directory fsync'd, so a segment on disk is
always complete: a crash while spooling leaves at most a ``.tmp`` file, which is removed at the
next start (its readings were not yet reported durable, so an MQTT broker still holds them).
Segments are replayed oldest first and removed only after the database has committed them;
a crash between the commit and the removal replays the segment again, which the idempotent
ingest turns into nothing.

Format of a segment: the magic ``GGSPOOL1``, the row count (uint32), the rows (``<qqdBB``: point
id, microseconds since 1970 UTC, value, has-value flag, quality), and a CRC32 of everything
before it. A segment that cannot be read back whole — a CRC that does not match, a length that
does not fit, or a valid CRC around a field no reading can hold (a quality code outside 0–2, a
has-value flag other than 0/1, a time outside the calendar, a stored value that is not finite) —
is moved to the ``corrupt/`` folder of the spool and reported with the number of readings it held
(:attr:`Spool.set_aside`; the writer turns it into a ``spool_corrupt`` finding), never replayed
half and never fatal: those readings were already acknowledged, so a person has to look.

``ids.json`` beside the segments keeps the point and device ids of the last start
(:func:`write_ids`, :func:`read_ids`): written to a temporary name, fsync'd, renamed; a damaged
one is an :class:`IdsFileError` naming the file.

The spool is bounded by ``max_bytes``: :meth:`Spool.append` refuses (returns False) when a
batch would not fit, and the writer keeps that batch in memory.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from model.readings import Quality, Reading, ReadingRow

log = logging.getLogger(__name__)

MAGIC = b"GGSPOOL1"
_HEAD = struct.Struct("<8sI")
_ROW = struct.Struct("<qqdBB")
_CRC = struct.Struct("<I")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB: about 40 million readings


class SpoolCorrupt(ValueError):
    pass


class SpoolBusy(RuntimeError):
    pass


class IdsFileError(ValueError):
    """``ids.json`` cannot be read; the message names the file and what to do."""


@dataclass(frozen=True)
class SetAside:
    """A segment moved to ``corrupt/``: its readings (from the header, else from its size) and why."""

    path: Path
    readings: int
    reason: str


@dataclass(frozen=True)
class Segment:
    seq: int
    path: Path
    size: int


def encode(readings: list[ReadingRow]) -> bytes:
    parts = [_HEAD.pack(MAGIC, len(readings))]
    pack = _ROW.pack
    for pid, ts, value, quality in readings:  # (by position: Readings and the Modbus loop's plain tuples)
        delta = ts - _EPOCH
        us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        has = value is not None
        parts.append(pack(pid, us, value if has else 0.0, has, int(quality)))
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def decode(data: bytes) -> list[Reading]:
    if len(data) < _HEAD.size + _CRC.size:
        raise SpoolCorrupt("segment shorter than its header")
    body, (crc,) = data[:-_CRC.size], _CRC.unpack(data[-_CRC.size:])
    if zlib.crc32(body) != crc:
        raise SpoolCorrupt("checksum mismatch")
    magic, count = _HEAD.unpack_from(body)
    if magic != MAGIC or len(body) != _HEAD.size + count * _ROW.size:
        raise SpoolCorrupt("bad magic or length")
    out = []
    for i, (pid, us, value, has, quality) in enumerate(_ROW.iter_unpack(body[_HEAD.size:])):
        # a valid CRC only says the bytes are the ones written: each field is checked as well
        if quality not in _QUALITIES or has not in (0, 1) or (has and not math.isfinite(value)) \
                or (not has and quality != Quality.BAD):
            raise SpoolCorrupt(f"row {i}: quality {quality}, has-value {has}, value {value!r} cannot be a reading")
        try:
            ts = _EPOCH + timedelta(microseconds=us)
        except OverflowError:
            raise SpoolCorrupt(f"row {i}: time {us} µs since 1970 is outside the calendar") from None
        out.append(Reading(pid, ts, value if has else None, Quality(quality)))
    return out


_QUALITIES = frozenset(int(q) for q in Quality)


def count_of(data: bytes) -> int:
    """How many readings a (possibly damaged or torn) segment held: its header's count when the file
    can hold that many rows, else what its size holds."""
    if len(data) >= _HEAD.size:
        magic, count = _HEAD.unpack_from(data)
        if magic == MAGIC and _HEAD.size + count * _ROW.size <= len(data):
            return count
    return max(0, (len(data) - _HEAD.size - _CRC.size) // _ROW.size)


class Spool:
    """A directory of segment files; not thread-safe (the writer task is its only user)."""

    def __init__(self, directory: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        # one collector per spool: a second one would replay and remove segments under the first
        self._lock_fd = os.open(self.directory / "spool.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolBusy(f"spool {self.directory} is in use by another collector; give each its own "
                            "(--spool-dir)") from None
        for tmp in self.directory.glob("*.tmp"):
            log.warning("spool %s: removing %s, a segment a crash left half-written", self.directory, tmp.name)
            tmp.unlink()
        self._segments: list[Segment] = sorted(
            (Segment(int(p.stem), p, p.stat().st_size) for p in self.directory.glob("*.seg") if p.stem.isdigit()),
            key=lambda s: s.seq,
        )
        self._next = self._segments[-1].seq + 1 if self._segments else 1
        corrupt = self.directory / "corrupt"
        if corrupt.is_dir():  # numbering never reuses a set-aside segment's name
            seqs = [int(p.stem) for p in corrupt.glob("*.seg") if p.stem.isdigit()]
            self._next = max([self._next, *(q + 1 for q in seqs)])
        #: segments set aside since the last look (the writer reports and clears them)
        self.set_aside: list[SetAside] = []
        self.bytes = sum(s.size for s in self._segments)
        if self._segments:
            log.info("spool %s: %d segments (%d bytes) from before a restart will be replayed",
                     self.directory, len(self._segments), self.bytes)

    def __len__(self) -> int:
        return len(self._segments)

    @property
    def segments(self) -> list[Segment]:
        return list(self._segments)

    def append(self, readings: list[ReadingRow]) -> bool:
        """Write a batch durably; False (nothing written) when it would exceed ``max_bytes``."""
        data = encode(readings)
        if self.bytes + len(data) > self.max_bytes:
            return False
        seq = self._next
        final = self.directory / f"{seq:012d}.seg"
        _write_durably(final, data, final.with_suffix(".tmp"))
        self._fsync_dir()
        self._next += 1
        self._segments.append(Segment(seq, final, len(data)))
        self.bytes += len(data)
        return True

    def oldest(self) -> tuple[Segment, list[Reading]] | None:
        """The oldest segment and its readings; a corrupt one is set aside and the next returned."""
        while self._segments:
            seg = self._segments[0]
            data = b""
            try:
                data = seg.path.read_bytes()
                return seg, decode(data)
            except (OSError, SpoolCorrupt) as exc:
                self._set_aside(seg, count_of(data) if data else seg.size // _ROW.size, str(exc))
        return None

    def _set_aside(self, seg: Segment, readings: int, reason: str) -> None:
        corrupt = self.directory / "corrupt"
        target = corrupt / seg.path.name
        try:
            corrupt.mkdir(exist_ok=True)
            os.replace(seg.path, target)
            self._fsync_dir()
        except OSError as exc:
            reason += f"; could not be moved to {corrupt} ({exc})"
            target = seg.path
        log.error("spool segment %s cannot be read (%s): %d readings set aside in %s, not replayed",
                  seg.path.name, reason, readings, target)
        self.set_aside.append(SetAside(target, readings, reason))
        self._drop(seg)

    def remove(self, seg: Segment) -> None:
        """Remove a segment once the database has committed it."""
        seg.path.unlink(missing_ok=True)
        self._drop(seg)
        self._fsync_dir()

    def readings(self) -> Iterator[Reading]:
        """Every spooled reading, oldest first (for inspection and tests)."""
        for seg in self._segments:
            yield from decode(seg.path.read_bytes())

    def close(self) -> None:
        """Release the directory for another collector (also released when the process dies)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _drop(self, seg: Segment) -> None:
        self._segments.remove(seg)
        self.bytes -= seg.size

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_durably(path: Path, data: bytes, tmp: Path) -> None:
    """Write ``data`` to ``tmp``, fsync it, and rename it to ``path``: a reader sees the old file or
    the whole new one, never part of it (the caller fsyncs the directory)."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_ids(path: Path, content: dict) -> None:
    """Write ``ids.json`` atomically: a temporary name, fsync, rename, directory fsync. A path that
    cannot be written (a directory in its place, no permission, a full disk) is :class:`IdsFileError`."""
    try:
        _write_durably(path, json.dumps(content).encode(), path.with_name(path.name + ".tmp"))
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        what = "is a directory" if path.is_dir() else f"cannot be written ({exc.strerror or exc})"
        raise IdsFileError(f"{path}: {what}; remove it or give another --spool-dir (the collector keeps the "
                           "ids of its last start there)") from None


def read_ids(path: Path) -> dict | None:
    """The ids of the last start, or None when there is no file; a damaged file is :class:`IdsFileError`."""
    try:
        data = json.loads(path.read_bytes())
        if not (isinstance(data, dict) and isinstance(data.get("site"), str)
                and isinstance(data.get("points"), dict) and isinstance(data.get("devices"), dict)
                and all(isinstance(v, int) for v in [*data["points"].values(), *data["devices"].values()])):
            raise ValueError("not an object with site, points and devices")
        return data
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise IdsFileError(f"{path}: damaged ({str(exc).splitlines()[0][:200]}); delete it and start the "
                           "collector once with the database reachable") from None
