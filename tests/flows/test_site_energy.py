"""accounting/site_energy.py against the real PostgreSQL: meters that disagree never crash a report."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

from model.readings import Reading
from accounting.site_energy import site_energy
from greengauge.demo import DEMO_SITE
from model.site import load_site
from store.ingest import write_readings
from store.sites import apply_site

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def test_green_above_consumption_is_a_finding_not_a_crash(conn):
    ids = apply_site(conn, load_site(Path(str(DEMO_SITE))))
    t = [T0 + timedelta(minutes=15 * i) for i in range(3)]
    # 100 Wh of PV used on site in the first quarter hour; 60 Wh exported in the second with no PV
    # metered then: over the period on-site green (100) exceeds consumption (10 - 60 + 100 = 50)
    series = {"pv.energy_export": [0, 100, 100], "grid.energy_import": [0, 0, 10], "grid.energy_export": [0, 0, 60]}
    write_readings(conn, [Reading(ids[f"jj-shoes.main.{name}"], ts, float(v))
                          for name, values in series.items() for ts, v in zip(t, values)])
    conn.commit()
    r = site_energy(conn, "jj-shoes", t[0], t[-1])
    assert (r.totals.green_wh, r.totals.consumption_wh) == (100, 50)
    assert r.share is None
    assert [f.kind for f in r.findings] == ["balance_inconsistent"]
