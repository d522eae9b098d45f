"""Fixtures for the dashboards: the demo plant and a second enterprise in another park, one
simulated day each, rolled up and with every result table filled by the flows' plain functions.

Built once per test module (a simulated day, its rollup, metrics, eligibility and quality take a
few seconds); every test reads it, none writes to it (tests that write use their own database).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from model.readings import Reading
from collectors.simulator import Plant
from greengauge.demo import DEMO_SITE
from model.site import load_site
from metrics.periods import local_bounds
from store.ingest import write_readings
from store.sites import apply_site
from tests.conftest import drop_test_database, new_test_database
from tests.flows.conftest import DAY

# the second enterprise: the demo plant's devices under other codes, in another park
OTHER = {"jinjiang-eco": "xiamen-torch", "晋江经济开发区（示范园区）": "厦门火炬高新区", "jj-shoes": "xm-textile",
         "晋江示范鞋业有限公司": "厦门示范纺织有限公司", "footwear": "textile"}
AS_OF_DELAY = timedelta(minutes=30)


@dataclass
class Plantdb:
    url: str
    start: datetime  # the simulated local day, as UTC
    end: datetime
    as_of: datetime  # when the flows ran (data time)
    codes: tuple[str, str]  # (demo enterprise, other enterprise)
    parks: tuple[str, str]
    readers: dict[str, str]  # organization (park code or "bureau") -> URL logging in as its reader role

    def other(self, park: str) -> tuple[str, str]:
        """(park, enterprise) of the other park."""
        i = 1 - self.parks.index(park)
        return self.parks[i], self.codes[i]


def _power_point_device(site) -> dict[str, str]:
    """Power key of the simulator for each device with an active_power point."""
    keys = {}
    for d in site.devices:
        roles = {p.role for p in d.point_configs() if p.role}
        if roles & {"grid_import", "grid_export"}:
            keys[d.name] = "grid"
        elif "pv_generation" in roles:
            keys[d.name] = "pv"
        elif roles & {"storage_charge", "storage_discharge"}:
            keys[d.name] = "battery"
        elif "subproject" in roles:
            keys[d.name] = "subproject"
    return keys


def write_site_day(conn: psycopg.Connection, site_file: Path, seed: int = 7, *, recycling_stops: timedelta,
                   pv_gap: tuple[int, int] | None = None) -> None:
    """Counter readings of every role point and active power of every device, each minute of the
    simulated day (an hour either side), as the collector's writer stores them. The recycling
    line's meter stops ``recycling_stops`` before the day ends (a stale device); the PV meter
    is silent over the local hours ``pv_gap`` (a data gap)."""
    site = load_site(site_file)
    ids = apply_site(conn, site)
    start, end = local_bounds("day", DAY, site.enterprise.timezone)
    t, t1 = start - timedelta(hours=1), end + timedelta(hours=1)
    plant = Plant(site.simulation, t, site.enterprise.timezone, seed=seed)
    keys = _power_point_device(site)
    counters, powers, device_of = {}, {}, {}
    for name, d, p in site.points():
        device_of[ids[name]] = d.name
        if p.role:
            counters[ids[name]] = p.role
        elif p.quantity == "active_power" and d.name in keys:
            powers[ids[name]] = keys[d.name]
    stop = end - recycling_stops
    gap = (start + timedelta(hours=pv_gap[0]), start + timedelta(hours=pv_gap[1])) if pv_gap else None

    def silent(pid: int, t: datetime) -> bool:
        dev = device_of[pid]
        return (dev == "recycling" and t >= stop) or (dev == "pv" and gap is not None and gap[0] <= t < gap[1])

    out = []
    while t < t1:
        plant.advance_to(t)
        out += [Reading(pid, t, float(plant.state.counters_wh[role])) for pid, role in counters.items()
                if not silent(pid, t)]
        out += [Reading(pid, t, float(plant.state.power_w[key])) for pid, key in powers.items() if not silent(pid, t)]
        t += timedelta(seconds=60)
    write_readings(conn, out)
    conn.commit()


def make_readers(conn: psycopg.Connection, url: str, parks: tuple[str, ...]) -> dict[str, str]:
    """A reader login per park and one for the bureau (store/tenancy.py), as `dashboards provision`
    finds them: organization -> libpq URL logging in as that role."""
    from store import tenancy

    out = {p: tenancy.reader_url(url, tenancy.add_reader(conn, park=p)) for p in parks}
    out["bureau"] = tenancy.reader_url(url, tenancy.add_reader(conn, bureau=True))
    conn.commit()
    return out


def fill_results(url: str, as_of: datetime) -> None:
    """Run the rollup, metrics, eligibility and quality flows' plain functions once."""
    from flows.eligibility import evaluate
    from flows.metrics import enterprise_metrics
    from flows.quality import check
    from flows.rollup import rollup
    from store.results import enterprises

    rollup(url)
    with psycopg.connect(url) as conn:
        es = enterprises(conn)
    for e in es:
        enterprise_metrics(url, e, as_of)
        evaluate(url, e, as_of.year, as_of)
    check(url, as_of)


PRODUCTION_CSV = """record,enterprise,product,period_start,period_end,quantity,unit,output_value_yuan
production,xm-textile,fabric,2025-01-01,2025-06-21,1200,t,2500000.00
production,xm-textile,yarn,2025-06-01,2025-06-21,10,t,
"""


def add_production(conn: psycopg.Connection) -> None:
    """The second enterprise's output value (the demo plant records none): one row without a value."""
    from store.production import import_production, parse_production_csv

    import_production(conn, parse_production_csv(PRODUCTION_CSV))
    conn.commit()


def add_health(conn: psycopg.Connection, as_of: datetime) -> None:
    """The collectors' view of the devices: every device answering, except each battery, away
    (what collectors/health.py upserts)."""
    from model.findings import Finding, FindingKind, Subject
    from store.health import HealthRow, add_findings, upsert_health

    rows = conn.execute("SELECT device_id, name FROM device ORDER BY device_id").fetchall()
    add_findings(conn, [Finding(FindingKind.DEVICE_ERROR, Subject(did, None, f"device {did}"), as_of - timedelta(hours=3),
                                data={"text": "Modbus exception 4"}, count=3, last_seen=as_of - timedelta(hours=1))
                        for did, name in rows if name == "battery"])
    upsert_health(conn, [
        HealthRow(did, "away", as_of - timedelta(minutes=20), as_of, as_of - timedelta(minutes=20), 20, None,
                  "timed out") if name == "battery" else
        HealthRow(did, "ok", as_of - timedelta(days=1), as_of, as_of, 0, 12.5, None) for did, name in rows])
    conn.commit()


@pytest.fixture(scope="module")
def plant_db(tmp_path_factory) -> Plantdb:
    name, url = new_test_database(migrated=True)
    try:
        other = Path(DEMO_SITE).read_text(encoding="utf-8")
        for a, b in OTHER.items():
            other = other.replace(a, b)
        other_file = tmp_path_factory.mktemp("site") / "other-site.yaml"
        other_file.write_text(other, encoding="utf-8")
        with psycopg.connect(url) as conn:
            write_site_day(conn, Path(DEMO_SITE), recycling_stops=timedelta(hours=2), pv_gap=(10, 11))
            write_site_day(conn, other_file, seed=11, recycling_stops=timedelta(hours=3))
            add_production(conn)
        start, end = local_bounds("day", DAY, "Asia/Shanghai")
        as_of = end + AS_OF_DELAY
        fill_results(url, as_of)
        parks = ("jinjiang-eco", "xiamen-torch")
        with psycopg.connect(url) as conn:
            add_health(conn, as_of)
            readers = make_readers(conn, url, parks)
        yield Plantdb(url, start, end, as_of, ("jj-shoes", "xm-textile"), parks, readers)
    finally:
        drop_test_database(name)  # and its roles (cluster-wide): this database's readers
