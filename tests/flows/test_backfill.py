"""flows/backfill.py forces the eligibility evaluation; a meter replacement recorded late reaches
the stored rollup (watermark moved back) and `greengauge meter replace` says how to backfill."""

from datetime import datetime, timedelta

from typer.testing import CliRunner

import flows.backfill
from flows.rollup import rollup
from accounting.site_energy import point_intervals
from greengauge.cli import app
from store.rollups import watermarks
from store.sites import site_points

runner = CliRunner()


def test_backfill_evaluates_eligibility_with_force(db_url, sim_day, monkeypatch):
    # the fingerprint check would skip a re-evaluation whose inputs it thinks unchanged; a
    # backfill is run precisely to recompute, so it must force it
    calls = []
    real = flows.backfill.evaluate

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(flows.backfill, "evaluate", spy)
    day = sim_day.start.astimezone(sim_day.plant.tz).date()
    flows.backfill.backfill(db_url, "jj-shoes", day, day, as_of=sim_day.end + timedelta(days=1))
    assert calls and all(c.get("force") is True for c in calls)


def test_meter_replace_recomputes_the_rollup_and_prints_the_backfill(db_url, conn, sim_day, monkeypatch):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    rollup(db_url)
    pid = sim_day.role_points["pv_generation"]
    name = {v: k for k, v in sim_day.point_ids.items()}[pid]
    noon = sim_day.start + timedelta(hours=12)
    (v_noon,) = conn.execute("SELECT value FROM reading WHERE point_id = %s AND ts = %s", (pid, noon)).fetchone()
    points = [p for p in site_points(conn, "jj-shoes") if p.point_id == pid]
    before = sum(iv.energy_wh for iv in point_intervals(conn, points, sim_day.start, sim_day.end)[0][pid])
    conn.commit()
    # swapped 30 s after the noon reading: the old meter ended at its noon reading, the new one
    # started 1 000 Wh below it, so the day gains exactly 1 000 Wh
    at = noon + timedelta(seconds=30)
    out = runner.invoke(app, ["meter", "replace", "--point", name, "--at", at.isoformat(),
                              "--old-final-wh", str(v_noon), "--new-initial-wh", str(v_noon - 1000),
                              "--reason", "meter failed calibration"])
    assert out.exit_code == 0, out.output
    day = at.astimezone(sim_day.plant.tz).date()
    today = datetime.now(sim_day.plant.tz).date()
    assert f"greengauge flows backfill jj-shoes --from {day} --to {today}" in out.output
    assert watermarks(conn, [pid])[pid] == at  # moved back: the next rollup recomputes from the swap
    conn.commit()
    rollup(db_url)  # incremental: no backfill range given
    direct = point_intervals(conn, points, sim_day.start, sim_day.end)[0][pid]
    stored = conn.execute("""SELECT bucket_start, energy_wh, estimated FROM interval_energy
                             WHERE point_id = %s AND bucket_start >= %s AND bucket_start < %s ORDER BY 1""",
                          (pid, sim_day.start, sim_day.end)).fetchall()
    assert [tuple(r) for r in stored] == [(iv.start, iv.energy_wh, iv.estimated) for iv in direct]
    assert sum(r[1] for r in stored) == before + 1000
    assert watermarks(conn, [pid])[pid] == sim_day.data_to - timedelta(minutes=1)  # back at the newest reading
