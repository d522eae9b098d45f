"""The two kinds of Prefect task GreenGauge flows are made of.

- :func:`io_task`: reads or writes the database. Retried with exponential backoff and jitter, never
  cached (the database is the state), so a database restart or a lock timeout costs a retry, not a
  failed run.
- :func:`metric_task`: wraps a pure function of :mod:`metrics` (numbers in, numbers out). No
  retries: a pure function that failed once fails again.
"""

from __future__ import annotations

import os

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from model.settings import get_settings

#: retries of an I/O task: 3, after about 2, 4 and 8 s, each stretched by up to ±50 % jitter
IO_RETRIES = 3
IO_BACKOFF_S = 2
IO_JITTER = 0.5


def io_task(fn=None, **kwargs):
    opts = dict(retries=IO_RETRIES, retry_delay_seconds=exponential_backoff(backoff_factor=IO_BACKOFF_S),
                retry_jitter_factor=IO_JITTER, cache_policy=NO_CACHE, persist_result=False)
    opts.update(kwargs)
    return task(fn, **opts) if fn is not None else task(**opts)


def metric_task(fn=None, **kwargs):
    opts = dict(cache_policy=NO_CACHE, persist_result=False)
    opts.update(kwargs)
    return task(fn, **opts) if fn is not None else task(**opts)


def resolve_url(url: str | None) -> str:
    """The URL a flow was given, else GREENGAUGE_DATABASE_URL."""
    return url or get_settings().database_url


def _whole(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name}={raw!r}: give a whole number of at least 1 (default {default})")
    return n


#: how many of a flow run's mapped tasks (batches of enterprises) run at once
#: (``GREENGAUGE_FLOW_WORKERS``, default 4): each keeps a database connection, so the pool is
#: bounded (Prefect's default thread pool is not: a province's 20,000 enterprises would open 20,000
#: connections)
FLOW_WORKERS = _whole("GREENGAUGE_FLOW_WORKERS", 4)
#: at most this many enterprises in one mapped task (``GREENGAUGE_FLOW_BATCH``, default 50): a
#: batch reads its start and writes its results and watermarks in a round trip each, so an hourly
#: pass costs little more than its computing; smaller batches spread a small province over every worker
FLOW_BATCH = _whole("GREENGAUGE_FLOW_BATCH", 50)


def batches(items: list, workers: int | None = None, most: int | None = None) -> list[list]:
    """``items`` in consecutive batches of at most ``most`` (:data:`FLOW_BATCH`), and small enough
    that every one of ``workers`` (:data:`FLOW_WORKERS`) gets one: the tasks a flow maps."""
    workers, most = workers or FLOW_WORKERS, most or FLOW_BATCH
    size = max(1, min(most, -(-len(items) // workers)))
    return [items[i:i + size] for i in range(0, len(items), size)]


def batch_name(kind: str):
    """A mapped batch task's run name: ``kind-first…last`` of the enterprise codes it holds
    (Prefect passes a callable taking ``parameters`` the task's arguments)."""
    def name(parameters: dict) -> str:
        codes = [getattr(e, "code", "?") for e in parameters.get("ents") or []]
        return f"{kind}-{codes[0]}" + (f"…{codes[-1]}" if len(codes) > 1 else "") if codes else kind
    return name


def task_runner() -> ThreadPoolTaskRunner:
    """The task runner of the flows that map a task per batch of enterprises."""
    return ThreadPoolTaskRunner(max_workers=FLOW_WORKERS)


class BatchError(RuntimeError):
    """Some enterprises of a batch failed (the others' results are stored): ``failed`` holds (enterprise,
    error) pairs; the first error is the cause."""

    def __init__(self, failed: list[tuple]):
        self.failed = failed
        super().__init__("; ".join(f"{e.code}: {type(exc).__name__}: {exc}" for e, exc in failed))
        self.__cause__ = failed[0][1]
