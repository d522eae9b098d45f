"""The figures compute from columns (numpy, int64 Wh): they must give what the rules say interval by
interval. A reference written the plain way — one interval at a time, as docs/accounting.md
states the rules — against :func:`metrics.figures.site_energy` and :func:`metrics.figures.day_balances`
on arbitrary stored intervals (gaps, estimated and suspect flags, a missing meter, several points
per role, a time zone with daylight saving)."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st

from metrics.balance import BatteryPool
from metrics.bundle import EnterprisePeriod, Point, PointSeries, epoch_s
from metrics.figures import day_balances, site_energy
from metrics.intervals import IntervalEnergy

T0 = datetime(2025, 3, 8, 5, tzinfo=timezone.utc)  # New York's spring-forward weekend
ROLES = ("grid_import", "grid_import", "grid_export", "pv_generation", "storage_charge", "storage_discharge",
         "subproject")
N = 96 * 3


def reference(points, series, start_i, end_i, count_suspect, pool=(0, 0)):
    """The balance rules one interval at a time (docs/accounting.md "The site balance")."""
    total, green = pool
    sums = dict.fromkeys(("import", "export", "pv", "charge", "discharge", "consumption", "self", "green"), 0)
    intervals = estimated = measured = 0
    balance_points = [p for p in points if p.role != "subproject"]
    for i in range(start_i, end_i):
        e = dict.fromkeys(ROLES, 0)
        present, every = False, bool(balance_points)
        for p in balance_points:
            iv = series[p.point_id].get(i)
            if iv is None:
                every = False
                continue
            present = True
            wh = iv.energy_wh
            if not count_suspect and iv.suspect and p.rated_power_w is not None:
                wh = min(wh, p.rated_power_w * 900 // 3600)
            e[p.role] += wh
            every = every and not iv.estimated
        measured += every
        if not present:
            continue
        intervals += 1
        estimated += not every
        imp, exp, pv, chg, dis = (e["grid_import"], e["grid_export"], e["pv_generation"], e["storage_charge"],
                                  e["storage_discharge"])
        pv_export = min(exp, pv)
        kept = pv - pv_export
        to_batt = min(chg, kept)
        total += chg
        green += to_batt
        from_pool = min(dis, total)
        gd = from_pool * green // total if total else 0
        total -= from_pool
        green -= gd
        batt_export = min(exp - pv_export, dis)
        gd -= batt_export * gd // dis if dis else 0
        for k, v in (("import", imp), ("export", exp), ("pv", pv), ("charge", chg), ("discharge", dis),
                     ("consumption", imp - exp + pv + dis - chg), ("self", kept), ("green", kept - to_batt + gd)):
            sums[k] += v
    return intervals, estimated, measured, sums, (total, green)


interval = st.one_of(st.none(), st.tuples(st.integers(0, 30_000), st.booleans(), st.booleans()))


@settings(max_examples=10, deadline=None)
@given(data=st.lists(st.lists(interval, min_size=N, max_size=N), min_size=len(ROLES), max_size=len(ROLES)),
       cut=st.tuples(st.integers(0, N), st.integers(0, N)), count_suspect=st.booleans(),
       pool=st.tuples(st.integers(0, 50_000), st.integers(0, 50_000)))
def test_site_energy_and_day_balances_follow_the_rules_interval_by_interval(data, cut, count_suspect, pool):
    points = tuple(Point(k + 1, f"p{k}", f"d{k}", "energy_import", role, "recycling" if role == "subproject" else None,
                         20_000 if k % 2 else None) for k, role in enumerate(ROLES))
    series = {p.point_id: {i: IntervalEnergy(T0 + timedelta(minutes=15 * i), wh, est, sus)
                           for i, v in enumerate(col) if v is not None for wh, est, sus in [v]}
              for p, col in zip(points, data)}
    period = EnterprisePeriod("x", 1, "America/New_York", T0, T0 + timedelta(minutes=15 * N), points,
                              {pid: PointSeries.of(list(s.values())) for pid, s in series.items()})
    a, b = sorted(cut)
    pool = (max(pool), min(pool))  # green never above total
    se = site_energy(period, T0 + timedelta(minutes=15 * a), T0 + timedelta(minutes=15 * b),
                     count_suspect=count_suspect, pool=BatteryPool(*pool))
    n, est, measured, sums, end_pool = reference(points, series, a, b, count_suspect, pool)
    t = se.totals
    assert (t.intervals, t.estimated_intervals, se.measured_intervals) == (n, est, measured)
    assert (t.import_wh, t.export_wh, t.pv_wh, t.charge_wh, t.discharge_wh, t.consumption_wh,
            t.pv_self_consumed_wh, t.green_wh) == tuple(sums.values())
    assert (se.segment.pool_total_wh, se.segment.pool_green_wh) == end_pool
    assert len(se.balance) == n and sum(x.green_wh for x in se.balance) == t.green_wh
    # each local day with an empty battery at its midnight, all at once = one day at a time
    zone = ZoneInfo("America/New_York")
    days = sorted({(T0 + timedelta(minutes=15 * i)).astimezone(zone).date() for i in range(N)})[1:-1]
    together = day_balances(period, days)
    for d in days:
        lo = datetime.combine(d, datetime.min.time(), zone).astimezone(timezone.utc)
        hi = datetime.combine(d + timedelta(days=1), datetime.min.time(), zone).astimezone(timezone.utc)
        i0, i1 = (epoch_s(lo) - epoch_s(T0)) // 900, (epoch_s(hi) - epoch_s(T0)) // 900
        n, est, measured, sums, _ = reference(points, series, i0, i1, True)
        t, m = together[d]
        assert (t.intervals, t.estimated_intervals, m) == (n, est, measured), d
        assert (t.import_wh, t.consumption_wh, t.green_wh) == (sums["import"], sums["consumption"], sums["green"]), d
    assert days == [date(2025, 3, 8), date(2025, 3, 9)] or days  # the 23-hour day is among them
