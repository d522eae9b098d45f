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


def _flow_workers() -> int:
    raw = os.environ.get("GREENGAUGE_FLOW_WORKERS", "4")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"GREENGAUGE_FLOW_WORKERS={raw!r}: give a whole number of at least 1 (default 4)")
    return n


#: how many of a flow run's mapped per-enterprise tasks run at once (``GREENGAUGE_FLOW_WORKERS``,
#: default 4): each keeps a database connection, so the pool is bounded (Prefect's default thread
#: pool is not: a province's 20,000 enterprises would open 20,000 connections)
FLOW_WORKERS = _flow_workers()


def task_runner() -> ThreadPoolTaskRunner:
    """The task runner of the flows that map a task per enterprise."""
    return ThreadPoolTaskRunner(max_workers=FLOW_WORKERS)
