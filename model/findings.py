"""One typed finding for everything the collector and the data-quality checks notice.

A finding is a kind (:class:`FindingKind`), what it is about (:class:`Subject`: a device, a point,
or the source the collector saw — a topic, a device name, a spool file), its times and its data:
the numbers and names a sentence is made from. There is no sentence here: the text is made at the
edge (``greengauge/findings_text.py`` for the command line, in Chinese or English), so one finding
reads in either language and a dashboard can make its own.

Two shapes share the type and the table (``finding``, migration ``0700_findings.sql``):

- a *counted* finding of the collector (``origin`` ``collector``): one per (kind, source), its
  ``count`` of occurrences from ``opened_at`` (first seen) to ``last_seen``; never closed;
- a *data-quality* finding of the flows (``origin`` ``quality``): a state opened when a condition
  starts and closed when it ends, or an event recorded once with its start and end;
- a *counter* finding of the rollup (``origin`` ``rollup``, migration ``0800``): an event at one
  reading of a counter point (outlier, wrap, reset, replacement, spike — the kinds of
  :data:`metrics.counters.FINDING_KINDS`), replaced whenever the rollup recomputes its range; the
  pure counter code reports them as :class:`metrics.counters.CounterFinding`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class FindingKind(StrEnum):
    # the collector (collectors/): counted per source
    UNKNOWN_TOPIC = "unknown_topic"  #: an MQTT topic no subscription or device maps
    UNKNOWN_POINT = "unknown_point"  #: a device without a point for a mapped quantity
    MALFORMED_PAYLOAD = "malformed_payload"
    WRONG_TYPE = "wrong_type"
    NOT_A_NUMBER = "not_a_number"
    MISSING_FIELD = "missing_field"
    OVERSIZED_PAYLOAD = "oversized_payload"
    OUT_OF_RANGE = "out_of_range"  #: a value beyond the plausible range after unit conversion
    NEGATIVE_COUNTER = "negative_counter"
    PAST_TIMESTAMP = "past_timestamp"  #: a device timestamp before the sane floor
    CLIENT_ID_CONFLICT = "client_id_conflict"  #: two collectors with one MQTT client_id
    FUTURE_TIMESTAMP = "future_timestamp"  #: a device clock ahead: stored at the collector's time
    COUNTER_SPIKE = "counter_spike"  #: a counter step above the rating (suspect until confirmed)
    SUSPECT_DROP = "suspect_drop"  #: a counter below its confirmed value (suspect until confirmed)
    DEVICE_ERROR = "device_error"  #: a Modbus device refused reads
    READINGS_DROPPED = "readings_dropped"  #: the only place readings are lost (memory full, no spool)
    SPOOL_CORRUPT = "spool_corrupt"  #: a spool segment set aside: acknowledged readings not stored
    READINGS_REJECTED = "readings_rejected"  #: rows the database refused for their content, set aside
    # data quality (flows/quality.py): states
    STALE_DEVICE = "stale_device"
    CLOCK_SKEW = "clock_skew"
    LOW_COMPLETENESS = "low_completeness"
    # data quality: events
    GAP = "gap"
    COUNTER_DROP = "counter_drop"  #: a stored counter fell, no reset or replacement recorded
    SPIKE = "spike"  #: a run of suspect readings

    @property
    def origin(self) -> str:
        return "quality" if self in _QUALITY else "collector"


_QUALITY = frozenset({FindingKind.STALE_DEVICE, FindingKind.CLOCK_SKEW, FindingKind.LOW_COMPLETENESS,
                      FindingKind.GAP, FindingKind.COUNTER_DROP, FindingKind.SPIKE})
STATES = (FindingKind.STALE_DEVICE, FindingKind.CLOCK_SKEW, FindingKind.LOW_COMPLETENESS)
EVENTS = (FindingKind.GAP, FindingKind.COUNTER_DROP, FindingKind.SPIKE)


def kind_of(kind: str | FindingKind) -> FindingKind | str:
    """The kind as the enum; a name the enum does not know yet (a colleague's new kind) stays a string,
    stored and shown by its name rather than lost."""
    try:
        return FindingKind(kind)
    except ValueError:
        return str(kind)


@dataclass(frozen=True)
class Subject:
    """What a finding is about: any of a device, a point, and the source the collector saw."""

    device_id: int | None = None
    point_id: int | None = None
    source: str | None = None  #: a topic, a point or device name, a spool file; the collector's key


@dataclass(frozen=True)
class Finding:
    kind: FindingKind | str
    subject: Subject
    opened_at: datetime  #: when it began (a counted finding: first seen)
    closed_at: datetime | None = None  #: when it ended; None while a state lasts, and for counted findings
    data: dict[str, Any] = field(default_factory=dict)  #: the values its text is made from (JSON)
    count: int = 1  #: occurrences (counted findings)
    last_seen: datetime | None = None  #: the latest occurrence or change
    finding_id: int | None = None

    @property
    def origin(self) -> str:
        return self.kind.origin if isinstance(self.kind, FindingKind) else "collector"

    # the fields the data-quality code reads
    @property
    def device_id(self) -> int | None:
        return self.subject.device_id

    @property
    def point_id(self) -> int | None:
        return self.subject.point_id
