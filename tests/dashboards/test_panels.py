"""Every panel's SQL on the real PostgreSQL holding the demo plant (park jinjiang-eco) and a second
enterprise in another park (xiamen-torch), with Grafana's macros expanded (dashboards/macros.py),
as the reader role of the dashboard's organization: the columns the panel expects, the figures
equal to the stored results, and no row of the other park."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from dashboards.build import ENTERPRISE_QUERY, PARK_QUERY, YEAR_QUERY
from dashboards.macros import TimeRange, Variable
from dashboards.panels import BALANCE_COLUMNS, DASHBOARDS
from dashboards.run import run_sql
from tests.flows.conftest import DAY

PANELS = [(name, p) for name, panels in DASHBOARDS.items() for p in panels]
DEMO_PARK, DEMO = "jinjiang-eco", "jj-shoes"


def day_range(db, **kw) -> TimeRange:
    # Grafana's "today" in Asia/Shanghai: local midnight to the last millisecond of the day
    return TimeRange(db.start, db.end - timedelta(milliseconds=1), **kw)


def variables(name: str, park: str, enterprise: str, db) -> dict[str, Variable]:
    year = Variable(str(DAY.year))
    if name == "bureau":
        return {"park": Variable("$__all", multi=True, include_all=True, options=db.parks),
                "enterprise": Variable("$__all", multi=True, include_all=True, options=db.codes), "year": year}
    out = {"park": Variable(park), "year": year}
    if name == "plant":
        out["enterprise"] = Variable(enterprise)
    return out


def org_of(name: str, park: str) -> str:
    return "bureau" if name == "bureau" else park


def run_as(db, org: str, sql: str, tr: TimeRange, vars: dict[str, Variable]):
    with psycopg.connect(db.readers[org]) as conn:
        user = conn.execute("SELECT current_user").fetchone()[0]
        # the organization's reader role, never the owner: its scope is the organization's park (or the bureau)
        assert owner(db, """SELECT t.kind, coalesce(p.code, 'bureau') FROM tenant_scope t
                            LEFT JOIN park p ON p.park_id = t.park_id WHERE t.role_name = %s""", user) == \
            [("bureau" if org == "bureau" else "park", org)]
        return run_sql(conn, sql, tr, vars)


def panel_rows(db, name, panel, park=DEMO_PARK, enterprise=DEMO, org=None):
    return run_as(db, org or org_of(name, park), panel.sql, day_range(db), variables(name, park, enterprise, db))


def owner(db, sql: str, *args):
    with psycopg.connect(db.url) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.mark.parametrize("name,panel", PANELS, ids=[p.key for _, p in PANELS])
def test_panel_returns_the_columns_it_expects(plant_db, name, panel):
    cols, rows = panel_rows(plant_db, name, panel)
    assert cols == panel.columns
    assert rows, f"{panel.key}: the demo plant should give this panel data"
    if panel.format == "time_series":
        assert cols[0] == "time"
    # every value column has a unit: the panel's, or its own override
    assert panel.unit
    assert set(panel.column_units) <= set(cols)


@pytest.mark.parametrize("name,panel", [x for x in PANELS if x[0] != "bureau"],
                         ids=[p.key for n, p in PANELS if n != "bureau"])
def test_no_row_of_the_other_park(plant_db, name, panel):
    """The park organization's reader, asked for the other park's enterprise by its own variables,
    gets nothing: the database decides, not the dashboard's WHERE clause."""
    other_park, other = plant_db.other(DEMO_PARK)
    vars = variables(name, other_park, other, plant_db)
    _, own_rows = run_as(plant_db, DEMO_PARK, panel.sql, day_range(plant_db), vars)
    assert all(all(v is None for v in row) for row in own_rows), own_rows[:3]
    # the same query as the other park's own reader does find rows: the test can see a leak
    _, theirs = run_as(plant_db, other_park, panel.sql, day_range(plant_db), vars)
    assert theirs
    # and with its own variables, every row names an enterprise of its own park
    if panel.enterprise_column:
        cols, rows = panel_rows(plant_db, name, panel)
        i = cols.index(panel.enterprise_column)
        assert {r[i] for r in rows} == {DEMO}


@pytest.mark.parametrize("name,panel", [x for x in PANELS if x[0] == "bureau"],
                         ids=[p.key for n, p in PANELS if n == "bureau"])
def test_bureau_sees_every_park_and_only_through_its_own_role(plant_db, name, panel):
    cols, rows = panel_rows(plant_db, name, panel)
    i = cols.index("enterprise")
    assert {r[i] for r in rows} == set(plant_db.codes)
    # a park's reader running the bureau's SQL sees only its park
    cols, rows = panel_rows(plant_db, name, panel, org=DEMO_PARK)
    assert {r[i] for r in rows} == {DEMO}


def test_variable_queries_list_only_the_organizations_own(plant_db):
    tr = day_range(plant_db)
    cols, rows = run_as(plant_db, DEMO_PARK, PARK_QUERY, tr, {})
    assert cols == ("__value", "__text")
    assert [r[0] for r in rows] == [DEMO_PARK]
    _, rows = run_as(plant_db, DEMO_PARK, ENTERPRISE_QUERY["single"], tr, {"park": Variable(DEMO_PARK)})
    assert [r[0] for r in rows] == [DEMO]
    _, rows = run_as(plant_db, "bureau", ENTERPRISE_QUERY["multi"], tr,
                     {"park": Variable(list(plant_db.parks), multi=True)})
    assert sorted(r[0] for r in rows) == sorted(plant_db.codes)
    _, rows = run_as(plant_db, DEMO_PARK, YEAR_QUERY, tr, {})
    assert rows == [(str(DAY.year), str(DAY.year))]


# -- the figures equal the stored results ---------------------------------------------------------

def by_key(key: str):
    return next((n, p) for n, p in PANELS if p.key == key)


def eid(db, code: str) -> int:
    return owner(db, "SELECT enterprise_id FROM enterprise WHERE code = %s", code)[0][0]


def test_todays_and_this_months_balance_are_the_stored_days(plant_db):
    e = eid(plant_db, DEMO)
    cols = ", ".join(BALANCE_COLUMNS)
    stored = owner(plant_db, f"SELECT {cols} FROM daily_balance WHERE enterprise_id = %s AND day = %s", e, DAY)
    assert panel_rows(plant_db, *by_key("plant_today_balance"))[1] == stored
    # the month: every stored day of June up to the 21st (the 20th holds the hour before the simulated day)
    month = owner(plant_db, f"SELECT {cols} FROM daily_balance WHERE enterprise_id = %s AND day BETWEEN %s AND %s",
                  e, DAY.replace(day=1), DAY)
    assert len(month) == 2
    assert panel_rows(plant_db, *by_key("plant_month_balance"))[1] == [tuple(map(sum, zip(*month)))]


def test_green_share_missing_and_status_are_r1_as_stored(plant_db):
    e = eid(plant_db, DEMO)
    (share, proj), = owner(plant_db, """SELECT g.share, p.projected_share FROM green_share_ytd g
                                         JOIN green_share_projection p USING (enterprise_id, year)
                                         WHERE enterprise_id = %s AND year = %s""", e, DAY.year)
    assert panel_rows(plant_db, *by_key("plant_ytd_share"))[1] == [(share, proj)]
    assert panel_rows(plant_db, *by_key("plant_ytd_missing"))[1] == owner(
        plant_db, """SELECT g.missing_wh, g.certificates_to_buy, p.gap_year_end_wh FROM green_share_ytd g
                     JOIN green_share_projection p USING (enterprise_id, year) WHERE enterprise_id = %s""", e)
    (row,) = panel_rows(plant_db, *by_key("plant_ytd_status"))[1]
    # one simulated day of a year: far below 95 % measured, so R1 says unknown
    assert row[:2] == ("unknown", owner(plant_db, "SELECT completeness FROM green_share_ytd WHERE enterprise_id = %s",
                                        e)[0][0])


def test_recycling_storage_and_eligibility_are_the_current_decisions(plant_db):
    e = eid(plant_db, DEMO)
    current = owner(plant_db, """SELECT document, clause, rule, subject, status, amount, version FROM eligibility_current
                                  WHERE enterprise_id = %s AND year = %s""", e, DAY.year)
    _, rows = panel_rows(plant_db, *by_key("plant_eligibility"))
    assert sorted(r[:7] for r in rows) == sorted(current)
    r2 = owner(plant_db, """SELECT document, clause, status, (evidence #>> '{inputs,recycling,energy_wh}')::bigint, amount
                             FROM eligibility_current WHERE enterprise_id = %s AND evidence->>'kind' = 'recycling_energy'""",
               e)
    _, rows = panel_rows(plant_db, *by_key("plant_recycling"))
    assert sorted(r[:5] for r in rows) == sorted(r2)
    assert all(r[3] > 0 for r in rows)  # the line ran until two hours before midnight
    _, rows = panel_rows(plant_db, *by_key("plant_storage_checks"))
    assert [r[3] for r in rows] == [r[4] for r in current if r[2] == "pv-storage-subsidy"]
    assert "no PV project commissioned in 2025" in rows[0][5]


def test_recycling_hourly_is_the_hourly_rollup(plant_db):
    _, rows = panel_rows(plant_db, *by_key("plant_recycling_hourly"))
    stored = owner(plant_db, """SELECT extract(epoch FROM h.bucket_start), h.energy_wh FROM energy_hourly h
                                 JOIN point p USING (point_id) WHERE p.name = 'jj-shoes.main.recycling.energy_import'
                                   AND h.bucket_start >= %s AND h.bucket_start < %s ORDER BY 1""",
                   plant_db.start, plant_db.end)
    assert [(float(t), wh) for t, wh in rows] == [(float(t), wh) for t, wh in stored]
    assert len(rows) == 22  # the meter went silent two hours before midnight


def test_live_power_is_the_raw_power_readings_and_load_their_balance(plant_db):
    _, rows = panel_rows(plant_db, *by_key("plant_live_power"))
    assert len(rows) == 24 * 60  # one row a minute
    grid = dict(owner(plant_db, """SELECT extract(epoch FROM ts), value FROM reading JOIN point USING (point_id)
                                     WHERE name = 'jj-shoes.main.grid.active_power' AND ts >= %s AND ts < %s""",
                      plant_db.start, plant_db.end))
    for t, grid_w, pv_w, battery_w, load_w in rows:
        assert grid_w == grid[t]
        # the PV meter is silent from 10:00 to 11:00: the load is then grid − battery (PV unknown, not 0)
        assert load_w == pytest.approx(grid_w + (pv_w or 0) - battery_w)
    silent = [r for r in rows if r[2] is None]
    assert len(silent) == 60


def test_device_health_and_findings(plant_db):
    _, rows = panel_rows(plant_db, *by_key("plant_device_health"))
    by_device = {r[0]: r for r in rows}
    assert by_device["battery"][1] == "away" and by_device["battery"][6] == "timed out"
    assert by_device["recycling"][7] == plant_db.end - timedelta(hours=2, minutes=1)  # its last reading
    _, rows = panel_rows(plant_db, *by_key("plant_dq_open"))
    kinds = {(r[0], r[1]) for r in rows}
    assert ("stale_device", "recycling") in kinds and ("device_error", "battery") in kinds
    _, rows = panel_rows(plant_db, *by_key("park_stale_devices"))
    assert {(r[0], r[1]) for r in rows} == {(DEMO, "recycling"), (DEMO, "battery")}


def test_park_rankings_and_totals_are_its_enterprises_stored_years(plant_db):
    e = eid(plant_db, DEMO)
    (share, status, completeness, green, consumption), = owner(
        plant_db, "SELECT share, status, completeness, green_wh, consumption_wh FROM green_share_ytd WHERE enterprise_id = %s", e)
    name = owner(plant_db, "SELECT name FROM enterprise WHERE enterprise_id = %s", e)[0][0]
    assert panel_rows(plant_db, *by_key("park_green_ranking"))[1] == [(DEMO, name, share, status)]
    assert panel_rows(plant_db, *by_key("park_completeness"))[1] == [(DEMO, completeness)]
    (row,) = panel_rows(plant_db, *by_key("park_totals"))[1]
    assert row[:3] == (1, consumption, green)
    assert float(row[3]) == pytest.approx(green / consumption, rel=1e-12)  # numeric division, display only
    coal, status = owner(plant_db, "SELECT energy_kgce, status FROM intensity_ytd WHERE enterprise_id = %s", e)[0]
    # no output value recorded for the demo plant: its intensity is unknown, not zero
    assert status == "unknown" and coal is not None
    assert panel_rows(plant_db, *by_key("park_intensity"))[1] == [(DEMO, "footwear", coal, None, 0, None, None)]


def test_intensity_is_the_stored_intensity_ytd_row(plant_db):
    from accounting.policy_inputs import intensity_year

    other_park, other = plant_db.other(DEMO_PARK)
    (row,) = panel_rows(plant_db, *by_key("park_intensity"), park=other_park, enterprise=other)[1]
    with psycopg.connect(plant_db.url) as conn:
        (e,) = intensity_year(conn, "textile", plant_db.as_of.year)["enterprises"]
    # what report intensity computes: 2 500 000 yuan of fabric over the year's coal; the yarn row
    # has no output value and is counted as missing; the only ranked enterprise of its industry
    coal = e["energy_kgce"]
    assert row[:5] == (other, "textile", coal, 2500000, 1) and row[6] == 1
    assert row[5] == (Decimal(coal) * 10000 / 2500000).quantize(Decimal("0.000001"))  # to 6 places, as printed


def test_bureau_figures_and_decision_versions(plant_db):
    _, rows = panel_rows(plant_db, *by_key("bureau_yearly"))
    stored = owner(plant_db, """SELECT e.code, g.share, g.completeness, g.green_wh, c.location_co2_kg FROM green_share_ytd g
                                 JOIN enterprise e USING (enterprise_id) JOIN carbon_ytd c USING (enterprise_id, year)
                                 ORDER BY e.code""")
    assert [(r[1], r[5], r[6], r[7], r[9]) for r in rows] == stored
    _, rows = panel_rows(plant_db, *by_key("bureau_decisions"))
    assert len(rows) == owner(plant_db, "SELECT count(*) FROM eligibility_decision")[0][0]
