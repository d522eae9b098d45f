"""The evidence every published figure carries, and a digest of its inputs.

References
----------
DESIGN.md "Every published figure carries its evidence": the inputs (points, period, row counts,
completeness), the rule and its clause, the code version, and a hash; a bureau can recompute it.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from fractions import Fraction

RULE_R1 = ("R1 green-electricity share ≥ 30 %: 晋政规〔2024〕2号 §三(一), 晋政規〔2025〕5號 §三(三); "
           "30 % inclusive per Civil Code of the PRC Art. 1259")


@dataclass(frozen=True)
class PointEvidence:
    name: str
    role: str
    readings: int | None  #: readings used, with the one before and after the period (None: from stored intervals)
    expected_intervals: int
    measured_intervals: int
    estimated_intervals: int
    missing_intervals: int
    suspect_intervals: int
    completeness: Fraction  #: measured / expected [1]
    energy_wh: int  #: [Wh]
    rollover_wh: float | None = None  #: wrap width used [Wh]
    rated_power_w: int | None = None  #: [W]
    #: the expected interval the point's quarter hours were judged by: readings no further apart are
    #: measured time — the device's poll interval (MQTT: interval_s), at least 15 min [s]
    expected_interval_s: int | None = None
    #: the resolutions stated on import (``import readings --resolution``) for ranges overlapping the
    #: period, as the rollup judged by them (joined: store.events.join_resolutions): readings in a
    #: range no further apart than its ``interval_s`` are measured too ({since, until, interval_s})
    import_resolutions: tuple[dict, ...] = ()


@dataclass(frozen=True)
class FindingEvidence:
    point: str
    kind: str
    ts: datetime
    detail: str


@dataclass(frozen=True)
class Evidence:
    """How a figure was obtained, enough to recompute it."""

    enterprise: str
    period_start: datetime  #: UTC, inclusive
    period_end: datetime  #: UTC, exclusive
    timezone: str
    points: tuple[PointEvidence, ...]
    findings: tuple[FindingEvidence, ...]
    ledger_entries: tuple[str, ...]  #: trades and certificate ranges used, bundled or rejected
    count_suspect: bool
    completeness_threshold: Fraction
    inputs_sha256: str
    code_version: str
    rule: str = RULE_R1
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def intervals(self) -> dict[str, int]:
        """Interval counts summed over the points."""
        return {
            "expected": sum(p.expected_intervals for p in self.points),
            "measured": sum(p.measured_intervals for p in self.points),
            "estimated": sum(p.estimated_intervals for p in self.points),
            "missing": sum(p.missing_intervals for p in self.points),
            "suspect": sum(p.suspect_intervals for p in self.points),
        }

    def to_json(self) -> dict:
        d = asdict(self)
        d["intervals"] = self.intervals
        return jsonable(d)


def jsonable(obj):
    """Fractions as "num/den" strings with a decimal beside, datetimes and dates as ISO 8601."""
    if isinstance(obj, Fraction):
        return {"exact": f"{obj.numerator}/{obj.denominator}", "decimal": f"{float(obj):.6f}"}
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


class InputDigest:
    """sha256 over the inputs of a figure, fed in a fixed order.

    Readings go in as packed arrays (epoch seconds and values as IEEE doubles), so hashing a year
    of data stays cheap; everything else as canonical JSON.
    """

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add_series(self, name: str, timestamps: Sequence[datetime], values: Sequence[float]) -> None:
        self.add_json({"series": name, "n": len(values)})
        self._h.update(array("d", [t.timestamp() for t in timestamps]).tobytes())
        self._h.update(array("d", values).tobytes())

    def add_json(self, obj) -> None:
        self._h.update(json.dumps(jsonable(obj), sort_keys=True, ensure_ascii=False, default=str).encode())
        self._h.update(b"\n")

    def add_bytes(self, data: bytes) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()
