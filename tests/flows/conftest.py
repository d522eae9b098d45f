"""Fixtures for the flows: a simulated plant's readings written straight into the database.

The plant is collectors.simulator.Plant (the same physics the Modbus demo serves); its counters
are sampled once per poll interval and written with store.ingest.write_readings, which is what
the collector's writer does, minus the Modbus round trip (covered by tests/greengauge).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from model.readings import Quality, Reading
from collectors.simulator import Plant
from greengauge.demo import DEMO_SITE
from model.site import SiteConfig, load_site
from metrics.periods import local_bounds
from store.ingest import write_readings
from store.sites import apply_site

DAY = date(2025, 6, 21)


@dataclass
class SimDay:
    site: SiteConfig
    plant: Plant
    point_ids: dict[str, int]  # by name
    role_points: dict[str, int]  # counter point id by role (subproject included)
    device_points: dict[str, list[int]]  # point ids by device name
    start: datetime  # local day start, UTC
    end: datetime
    data_from: datetime
    data_to: datetime


def sim_readings(day: SimDay, t0: datetime, t1: datetime, step_s: int = 60) -> list[Reading]:
    """Counter readings of every role point each ``step_s`` in [t0, t1), from the plant."""
    out = []
    t = t0
    while t < t1:
        day.plant.advance_to(t)
        for role, pid in day.role_points.items():
            out.append(Reading(pid, t, float(day.plant.state.counters_wh[role])))
        t += timedelta(seconds=step_s)
    return out


def make_sim_day(conn: psycopg.Connection, *, write_until: datetime | None = None) -> SimDay:
    site = load_site(Path(str(DEMO_SITE)))
    ids = apply_site(conn, site)
    role_points, device_points = {}, {}
    for name, d, p in site.points():
        device_points.setdefault(d.name, []).append(ids[name])
        if p.role:
            role_points[p.role] = ids[name]
    start, end = local_bounds("day", DAY, site.enterprise.timezone)
    data_from, data_to = start - timedelta(hours=1), end + timedelta(hours=1)
    plant = Plant(site.simulation, data_from, site.enterprise.timezone)
    sd = SimDay(site, plant, ids, role_points, device_points, start, end, data_from, data_to)
    write_readings(conn, sim_readings(sd, data_from, write_until or data_to))
    conn.commit()
    return sd


@pytest.fixture
def sim_day(conn) -> SimDay:
    return make_sim_day(conn)


def suspect(r: Reading) -> Reading:
    return Reading(r.point_id, r.ts, r.value, Quality.SUSPECT)


@pytest.fixture(scope="session")
def prefect_harness():
    """A throwaway Prefect server and database for the session (about 20 s to start: use sparingly)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
