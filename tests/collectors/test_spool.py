"""The disk spool: segments written whole, read back exactly, replayed oldest first, bounded."""

from datetime import datetime, timedelta, timezone

import pytest

from model.readings import Quality, Reading
from collectors.spool import Spool, SpoolBusy, SpoolCorrupt, decode, encode

T0 = datetime(2025, 6, 21, 4, 0, 0, 123456, tzinfo=timezone.utc)


def batch(n, start=0, pid=7):
    return [Reading(pid, T0 + timedelta(seconds=start + i), float(start + i) * 0.1, Quality.GOOD) for i in range(n)]


def test_a_segment_round_trips_every_field_exactly():
    readings = [
        Reading(1, T0, 123_456_789.25, Quality.GOOD),
        Reading(2**40, T0 + timedelta(microseconds=1), -0.0, Quality.SUSPECT),
        Reading(3, datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone.utc), None, Quality.BAD),  # no value
    ]
    assert decode(encode(readings)) == readings


def test_a_torn_or_flipped_segment_is_refused_not_replayed_half():
    data = encode(batch(10))
    with pytest.raises(SpoolCorrupt):
        decode(data[:-7])  # torn
    flipped = bytearray(data)
    flipped[30] ^= 0xFF
    with pytest.raises(SpoolCorrupt):
        decode(bytes(flipped))


def test_segments_survive_a_restart_and_come_back_oldest_first(tmp_path):
    spool = Spool(tmp_path)
    assert spool.append(batch(3, 0)) and spool.append(batch(3, 3)) and spool.append(batch(3, 6))
    (tmp_path / "000000000099.tmp").write_bytes(b"half a segment")  # a crash while spooling
    with pytest.raises(SpoolBusy):
        Spool(tmp_path)  # one collector per spool
    spool.close()
    again = Spool(tmp_path)  # the process restarted
    assert len(again) == 3
    assert not list(tmp_path.glob("*.tmp"))
    assert list(again.readings()) == batch(9)
    seg, readings = again.oldest()
    assert readings == batch(3, 0)
    again.remove(seg)
    assert [r for _, r in [again.oldest()]] == [batch(3, 3)]
    assert again.append(batch(1, 100))  # numbering continues after the highest segment
    assert sorted(p.name for p in tmp_path.glob("*.seg"))[-1] == "000000000004.seg"


def test_a_corrupt_segment_is_set_aside_and_the_next_is_replayed(tmp_path):
    spool = Spool(tmp_path)
    spool.append(batch(2, 0))
    spool.append(batch(2, 2))
    first = spool.segments[0].path
    first.write_bytes(first.read_bytes()[:-3])
    seg, readings = spool.oldest()
    assert readings == batch(2, 2)
    assert (tmp_path / "corrupt" / first.name).exists() and not first.exists()
    [aside] = spool.set_aside
    assert aside.readings == 2 and "checksum" in aside.reason  # a torn segment: counted from its size


def segment_with_rows(rows) -> bytes:
    """A segment whose checksum is valid, around whatever rows are given."""
    import struct
    import zlib
    body = struct.pack("<8sI", b"GGSPOOL1", len(rows)) + b"".join(struct.pack("<qqdBB", *r) for r in rows)
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize("row, what", [
    ((7, 0, 1.0, 1, 7), "quality 7"),                           # a quality code no reading has
    ((7, 0, 1.0, 2, 0), "has-value 2"),                         # a flag that is neither 0 nor 1
    ((7, 0, float("nan"), 1, 0), "value nan"),                  # a value that is not finite
    ((7, 2**62, 1.0, 1, 0), "outside the calendar"),            # a time no datetime holds
    ((7, 0, 0.0, 0, 0), "has-value 0"),                         # no value but not BAD
])
def test_a_segment_with_a_valid_checksum_but_an_impossible_field_is_corrupt(tmp_path, row, what):
    good = (7, 1_750_000_000_000_000, 5.0, 1, 0)
    with pytest.raises(SpoolCorrupt, match=what):
        decode(segment_with_rows([good, row, good]))
    spool = Spool(tmp_path)
    (tmp_path / "000000000001.seg").write_bytes(segment_with_rows([good, row, good]))
    spool.close()
    spool = Spool(tmp_path)
    assert spool.oldest() is None  # set aside, not raised
    assert [a.readings for a in spool.set_aside] == [3]  # counted from the header
    assert (tmp_path / "corrupt" / "000000000001.seg").exists()
    assert spool.append(batch(1)) and spool.segments[0].path.name == "000000000002.seg"  # no name reused


def test_the_ids_file_is_written_whole_and_a_damaged_one_is_one_clear_error(tmp_path):
    from collectors.spool import IdsFileError, read_ids, write_ids
    path = tmp_path / "ids.json"
    assert read_ids(path) is None
    content = {"site": "abc", "points": {"a.b.c.d": 1}, "devices": {"d": 2}}
    write_ids(path, content)
    assert read_ids(path) == content and not list(tmp_path.glob("*.tmp"))
    for damaged in (b'{"site": "abc", "poi', b"\xff\xfe", b"[]", b'{"site": "abc", "points": {"a": "x"}, "devices": {}}'):
        path.write_bytes(damaged)
        with pytest.raises(IdsFileError, match=r"ids.json: damaged .*delete it"):
            read_ids(path)


def test_the_spool_is_bounded(tmp_path):
    one = len(encode(batch(100)))
    spool = Spool(tmp_path, max_bytes=2 * one + 10)
    assert spool.append(batch(100)) and spool.append(batch(100, 100))
    assert not spool.append(batch(100, 200))  # refused whole, nothing written
    assert len(spool) == 2 and spool.bytes == 2 * one
    assert len(list(tmp_path.glob("*.seg"))) == 2
