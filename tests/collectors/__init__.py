from model.readings import Reading


def named(rows):
    """A poll's readings — plain ``(point_id, ts, value, quality)`` tuples on the Modbus hot path — as
    :class:`Reading` objects: named, and checked as ``Reading()`` checks (an aware timestamp, no value
    only when BAD), so every test that reads a poll also holds the hot path to those rules."""
    return [Reading(*r) for r in rows]
