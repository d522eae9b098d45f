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
    assert first.with_suffix(".corrupt").exists()


def test_the_spool_is_bounded(tmp_path):
    one = len(encode(batch(100)))
    spool = Spool(tmp_path, max_bytes=2 * one + 10)
    assert spool.append(batch(100)) and spool.append(batch(100, 100))
    assert not spool.append(batch(100, 200))  # refused whole, nothing written
    assert len(spool) == 2 and spool.bytes == 2 * one
    assert len(list(tmp_path.glob("*.seg"))) == 2
