"""The flows under Prefect (prefect_test_harness, the real PostgreSQL): one simulated day through
rollup, metrics, eligibility and data quality gives the figures metrics/ gives directly; a rerun
changes nothing; backfill recomputes a range. Kept to one test: the harness costs ~20 s."""

from datetime import timedelta

import pytest

from flows.backfill import backfill_flow
from flows.eligibility import eligibility_flow
from flows.metrics import metrics_flow
from flows.quality import quality_flow
from flows.rollup import rollup_flow, rollup_points
from flows.serve import deployments, schedules
from accounting.site_energy import site_energy


@pytest.mark.slow
def test_a_day_through_every_flow(prefect_harness, conn, db_url, sim_day):
    r = rollup_flow(database_url=db_url)
    assert r.intervals_written == 6 * (4 + 96 + 4)  # the hour before, the day, the hour after
    assert not rollup_flow(database_url=db_url).changed  # a rerun changes nothing

    as_of = sim_day.end + timedelta(hours=2)
    (m,) = metrics_flow(database_url=db_url, as_of=as_of)
    direct = site_energy(conn, "jj-shoes", sim_day.start, sim_day.end)
    day = sim_day.start.astimezone(sim_day.plant.tz).date()
    assert conn.execute("SELECT green_wh, consumption_wh FROM daily_balance WHERE day = %s", (day,)).fetchone() == (
        direct.totals.green_wh, direct.totals.consumption_wh)
    assert m.share is not None
    # carbon with the flow's defaults: factor offset 0, no 2025 factor, the latest (2023) and a note
    assert conn.execute("SELECT status, location_factor_year FROM carbon_ytd WHERE year = 2025").fetchone() == (
        "factor_fallback", 2023) == (m.carbon["status"], m.carbon["location_factor_year"])

    recorded = eligibility_flow(database_url=db_url, as_of=as_of)
    assert {x.reason for x in recorded} == {"first"}
    r1 = {(x.document, x.status) for x in recorded if x.rule == "green-share-priority"}
    assert ("晉政規〔2025〕5號", "unknown") in r1  # one day of a year: completeness far below 95 %
    ev = conn.execute("""SELECT evidence->'inputs'->'green_share'->'energy_wh'->>'onsite_green' FROM eligibility_current
                         WHERE year = 2025 AND rule = 'green-share-priority'""").fetchall()
    assert {row[0] for row in ev} == {str(direct.totals.green_wh)}  # the period ends at the day's end
    assert eligibility_flow(database_url=db_url, as_of=as_of) == []

    q = quality_flow(database_url=db_url, as_of=sim_day.data_to + timedelta(minutes=10), window_h=2)
    assert {o[0] for o in q.opened} == {"stale_device"}

    conn.execute("UPDATE interval_energy SET energy_wh = 0 WHERE bucket_start >= %s AND bucket_start < %s",
                 (sim_day.start, sim_day.start + timedelta(days=1)))
    conn.commit()
    b = backfill_flow(enterprise="jj-shoes", first=day, last=day, chunk_days=1, database_url=db_url)
    assert b.chunks == 1 and b.intervals_written > 0
    assert conn.execute("SELECT green_wh FROM daily_balance WHERE day = %s", (day,)).fetchone()[0] == direct.totals.green_wh


def test_schedules_and_task_kinds():
    deps = {d.name: d for d in deployments({"rollup": 60})}
    assert set(deps) == {"greengauge-rollup", "greengauge-metrics", "greengauge-eligibility",
                         "greengauge-data-quality", "greengauge-backfill"}
    assert deps["greengauge-rollup"].schedules[0].schedule.interval == timedelta(seconds=60)
    assert deps["greengauge-metrics"].schedules[0].schedule.interval == timedelta(minutes=15)
    assert deps["greengauge-backfill"].schedules == []
    assert deps["greengauge-rollup"].entrypoint == "flows.rollup.rollup_flow"
    assert schedules({"eligibility": 0})["eligibility"] is None
    with pytest.raises(ValueError, match="no flow"):
        schedules({"nope": 1})
    assert rollup_points.retries == 3 and rollup_points.retry_jitter_factor == 0.5
    assert rollup_points.retry_delay_seconds == [2, 4, 8]
