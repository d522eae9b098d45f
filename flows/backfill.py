"""Recompute any range of local days for one enterprise: after a historic import, or a meter
replacement recorded late. Chunked (one transaction per chunk and step), with progress.

Per chunk of days: the rollup of every counter point of the enterprise over the chunk (watermarks
untouched), then the daily balances of the chunk's days. After the last chunk: the year-to-date
figures and eligibility of every year the range touched, as of now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import psycopg
from prefect import flow, get_run_logger

from flows.eligibility import Recorded, evaluate
from flows.metrics import enterprise_metrics
from flows.rollup import rollup
from flows.tasks import io_task, resolve_url
from metrics.periods import local_bounds
from store.results import enterprises


@dataclass(frozen=True)
class Chunk:
    index: int
    first: date
    last: date  # inclusive


@dataclass
class BackfillResult:
    enterprise: str
    chunks: int = 0
    readings: int = 0
    intervals_written: int = 0
    days_rebalanced: int = 0
    decisions: list[Recorded] = field(default_factory=list)


def chunks(first: date, last: date, chunk_days: int) -> list[Chunk]:
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    if chunk_days < 1:
        raise ValueError(f"chunk_days must be at least 1, got {chunk_days}")
    out, d, i = [], first, 0
    while d <= last:
        end = min(d + timedelta(days=chunk_days - 1), last)
        out.append(Chunk(i, d, end))
        d, i = end + timedelta(days=1), i + 1
    return out


def backfill_chunk(url: str, enterprise: str, chunk: Chunk, as_of: datetime) -> tuple[int, int, int]:
    """Rollup and daily balances of one chunk; returns (readings, intervals written, days rebalanced)."""
    with psycopg.connect(url) as conn:
        (e,) = enterprises(conn, enterprise)
    start, _ = local_bounds("day", chunk.first, e.timezone)
    _, end = local_bounds("day", chunk.last, e.timezone)
    r = rollup(url, enterprise=enterprise, start=start, end=end)
    days = [chunk.first + timedelta(days=i) for i in range((chunk.last - chunk.first).days + 1)]
    rebalanced = 0
    for year in sorted({d.year for d in days}):
        m = enterprise_metrics(url, e, max(as_of, end), year=year, days=[d for d in days if d.year == year])
        rebalanced += len(m.daily)
    return r.readings, r.intervals_written, rebalanced


def finish(url: str, enterprise: str, years: list[int], as_of: datetime) -> list[Recorded]:
    """Year-to-date figures and eligibility of the years touched, as of ``as_of``."""
    with psycopg.connect(url) as conn:
        (e,) = enterprises(conn, enterprise)
    out = []
    for y in years:
        enterprise_metrics(url, e, as_of, year=y, days=[])
        # forced: the backfill exists to recompute, never to skip on an unchanged fingerprint
        out.extend(evaluate(url, e, y, as_of, force=True))
    return out


def backfill(url: str, enterprise: str, first: date, last: date, *, chunk_days: int = 7,
             as_of: datetime | None = None,
             on_chunk: Callable[[Chunk, int, BackfillResult], None] | None = None) -> BackfillResult:
    """Recompute the local days ``first``..``last`` (inclusive) of ``enterprise``.

    ``on_chunk(chunk, total, result_so_far)`` is called after each chunk, for progress display.
    """
    now = as_of or datetime.now(timezone.utc)
    parts = chunks(first, last, chunk_days)
    res = BackfillResult(enterprise)
    for c in parts:
        readings, written, days = backfill_chunk(url, enterprise, c, now)
        res.chunks += 1
        res.readings += readings
        res.intervals_written += written
        res.days_rebalanced += days
        if on_chunk:
            on_chunk(c, len(parts), res)
    res.decisions = finish(url, enterprise, list(range(first.year, last.year + 1)), now)
    return res


chunk_task = io_task(backfill_chunk, task_run_name="backfill-{chunk.first}-{chunk.last}")
finish_task = io_task(finish, task_run_name="backfill-finish")


@flow(name="backfill")
def backfill_flow(enterprise: str, first: date, last: date, chunk_days: int = 7,
                  database_url: str | None = None) -> BackfillResult:
    """Recompute a range of local days for one enterprise, chunk by chunk, with a progress artifact."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    url = resolve_url(database_url)
    log = get_run_logger()
    now = datetime.now(timezone.utc)
    parts = chunks(first, last, chunk_days)
    artifact = create_progress_artifact(0.0, description=f"backfill {enterprise} {first}..{last}")
    res = BackfillResult(enterprise)
    for c in parts:
        readings, written, days = chunk_task(url, enterprise, c, now)
        res.chunks += 1
        res.readings += readings
        res.intervals_written += written
        res.days_rebalanced += days
        update_progress_artifact(artifact, 100.0 * res.chunks / len(parts))
        log.info("backfill %s: chunk %d/%d (%s..%s): %d readings, %d intervals changed, %d days rebalanced",
                 enterprise, res.chunks, len(parts), c.first, c.last, readings, written, days)
    res.decisions = finish_task(url, enterprise, list(range(first.year, last.year + 1)), now)
    return res
