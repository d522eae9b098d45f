"""dashboards/macros.py against what Grafana's documentation and source (macros.go, sqleng,
SqlDatasource.interpolateVariable) produce, known values per case; and on PostgreSQL, that the
expanded filters select exactly the rows of the range."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import given, strategies as st

from tests.conftest import ADMIN_URL
from dashboards.macros import (MacroError, TimeRange, Variable, expand, format_interval, go_float,
                               interpolate_variables, parse_interval, rfc3339nano)

SH = ZoneInfo("Asia/Shanghai")
# the documentation's example range
TR = TimeRange(datetime(2017, 4, 21, 5, 1, 17, tzinfo=timezone.utc), datetime(2017, 4, 21, 5, 6, 17, tzinfo=timezone.utc))


@pytest.mark.parametrize("sql,out", [
    ("$__time(dateColumn)", 'dateColumn AS "time"'),
    ("$__timeEpoch(dateColumn)", 'extract(epoch from dateColumn) as "time"'),
    ("$__timeFilter(dateColumn)", "dateColumn BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"),
    ("$__timeFrom()", "'2017-04-21T05:01:17Z'"),
    ("$__timeTo()", "'2017-04-21T05:06:17Z'"),
    ("$__timeGroup(dateColumn,'5m')", "floor(extract(epoch from dateColumn)/300)*300"),
    ("$__timeGroup(dateColumn, '5m', 0)", "floor(extract(epoch from dateColumn)/300)*300"),  # fill: Grafana's side
    ("$__timeGroupAlias(dateColumn,'5m')", 'floor(extract(epoch from dateColumn)/300)*300 AS "time"'),
    # pre-5.3 compatibility: a ',' right after $__timeGroup(...) adds the alias
    ("SELECT $__timeGroup(ts,'1h'), v", 'SELECT floor(extract(epoch from ts)/3600)*3600 AS "time", v'),
    ("$__unixEpochFilter(dateColumn)", "dateColumn >= 1492750877 AND dateColumn <= 1492751177"),
    ("$__unixEpochFrom()", "1492750877"),
    ("$__unixEpochTo()", "1492751177"),
    ("$__unixEpochNanoFilter(c)", "c >= 1492750877000000000 AND c <= 1492751177000000000"),
    ("$__unixEpochGroup(dateColumn,'5m')", "floor((dateColumn)/300)*300"),
    ("$__unixEpochGroupAlias(dateColumn,'1d')", 'floor((dateColumn)/86400)*86400 AS "time"'),
    ("$__interval / $__interval_ms", "1m / 60000"),
])
def test_macros_as_documented(sql, out):
    assert expand(sql, TR) == out


def test_timescaledb_groups_with_time_bucket():
    # macros.go: time_bucket('%.3fs', col) when the datasource has TimescaleDB enabled
    assert expand("$__timeGroupAlias(ts, '15m')", TR, timescaledb=True) == "time_bucket('900.000s',ts) AS \"time\""


def test_unknown_macro_and_bad_arguments_are_refused_as_grafana_does():
    with pytest.raises(MacroError, match="unknown macro"):
        expand("$__timeFiltr(ts)", TR)
    with pytest.raises(MacroError, match="missing time column argument for macro __timeFilter"):
        expand("$__timeFilter()", TR)
    with pytest.raises(MacroError, match="needs time column and interval"):
        expand("$__timeGroup(ts)", TR)
    with pytest.raises(MacroError, match="error parsing interval"):
        expand("$__timeGroup(ts, 'often')", TR)


def test_times_are_go_rfc3339nano_in_utc():
    assert rfc3339nano(datetime(2025, 6, 22, 0, 0, tzinfo=SH)) == "2025-06-21T16:00:00Z"  # local midnight
    assert rfc3339nano(datetime(2025, 6, 21, 15, 59, 59, 999000, tzinfo=timezone.utc)) == "2025-06-21T15:59:59.999Z"
    assert rfc3339nano(datetime(2025, 1, 1, 0, 0, 0, 500000, tzinfo=timezone.utc)) == "2025-01-01T00:00:00.5Z"


@pytest.mark.parametrize("x,out", [(300, "300"), (60, "60"), (0.5, "0.5"), (604800, "604800"),
                                   (1e6, "1e+06"), (2592000, "2.592e+06"), (1e-5, "1e-05"), (0.0001, "0.0001")])
def test_interval_seconds_print_as_go_percent_v(x, out):
    assert go_float(x) == out


def test_intervals():
    assert parse_interval("15m") == timedelta(minutes=15)
    assert parse_interval("500ms") == timedelta(milliseconds=500)
    assert format_interval(timedelta(minutes=15)) == "15m"
    assert format_interval(timedelta(hours=2)) == "2h"
    assert format_interval(timedelta(milliseconds=500)) == "500ms"


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="UTC offset"):
        TimeRange(datetime(2025, 1, 1), datetime(2025, 1, 2))


# -- template variables: SqlDatasource.interpolateVariable ------------------------------------------

@pytest.mark.parametrize("sql,var,out", [
    # single value: quotes doubled, none added; the panel writes the quotes
    ("code = '$e'", Variable("jj-shoes"), "code = 'jj-shoes'"),
    ("code = '$e'", Variable("o'brien"), "code = 'o''brien'"),
    ("code = '${e}'", Variable("x"), "code = 'x'"),
    ("code = '[[e]]'", Variable("x"), "code = 'x'"),
    # multi-value: each value a quoted literal, comma-separated
    ("code IN ($e)", Variable(["a", "b'c"], multi=True), "code IN ('a','b''c')"),
    ("code IN ($e)", Variable("a", multi=True), "code IN ('a')"),
    # All: every option, or a custom all value inserted as it is
    ("code IN ($e)", Variable("$__all", multi=True, include_all=True, options=("a", "b")), "code IN ('a','b')"),
    ("code ~ '$e'", Variable("$__all", include_all=True, all_value=".*"), "code ~ '.*'"),
    # formats
    ("${e:csv}", Variable(["a", "b"], multi=True), "a,b"),
    ("${e:raw}", Variable("a'b"), "a'b"),
    ("${e:sqlstring}", Variable(["a", "b'c"], multi=True), "'a','b''c'"),
])
def test_variables_quoted_as_grafana_quotes_them(sql, var, out):
    assert interpolate_variables(sql, {"e": var}) == out


def test_unknown_names_and_macros_are_left_for_the_next_step():
    assert interpolate_variables("$__timeFilter(ts) AND $other", {"e": Variable("x")}) == "$__timeFilter(ts) AND $other"


@pytest.fixture(scope="module")
def pg():
    with psycopg.connect(ADMIN_URL, autocommit=True) as c:
        c.execute("SET default_transaction_read_only = on")
        yield c


TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@given(values=st.lists(TEXT, min_size=1, max_size=5), one=TEXT)
def test_any_selection_reads_back_exactly_as_selected(pg, values, one):
    """Property, on PostgreSQL: whatever the values (quotes, backslashes, '$e', SQL), the server
    reads back exactly them: nothing escapes the literals Grafana builds."""
    sql = interpolate_variables("SELECT ARRAY[$e]::text[], '$one'", {"e": Variable(values, multi=True),
                                                                     "one": Variable(one)})
    assert pg.execute(sql.encode()).fetchone() == (values, one)


def test_literals_round_trip_in_postgresql(conn):
    values = ["plain", "o'brien", "'; DROP TABLE park; --", "晋江", "back\\slash", "$e"]
    sql = interpolate_variables("SELECT ARRAY[$e]::text[], '$one'", {"e": Variable(values, multi=True),
                                                                     "one": Variable("it's")})
    assert conn.execute(sql.encode()).fetchone() == (values, "it's")
    assert conn.execute("SELECT count(*) FROM park").fetchone()[0] == 0  # the table is still there


def test_time_filter_selects_exactly_the_rows_of_the_range(conn):
    """On PostgreSQL: BETWEEN is inclusive at both ends, as Grafana's $__timeFilter is."""
    conn.execute("CREATE TEMP TABLE t (ts timestamptz)")
    base = datetime(2025, 6, 21, 16, 0, tzinfo=timezone.utc)
    conn.execute("INSERT INTO t SELECT %s + n * interval '1 minute' FROM generate_series(-2, 62) n", (base,))
    tr = TimeRange(base, base + timedelta(hours=1))
    n = conn.execute(expand("SELECT count(*) FROM t WHERE $__timeFilter(ts)", tr).encode()).fetchone()[0]
    assert n == 61
    n = conn.execute(expand("SELECT count(*) FROM (SELECT extract(epoch FROM ts)::bigint AS e FROM t) s "
                            "WHERE $__unixEpochFilter(s.e)", tr).encode()).fetchone()[0]
    assert n == 61
    groups = conn.execute(expand("SELECT $__timeGroupAlias(ts, '15m'), count(*) FROM t WHERE $__timeFilter(ts) "
                                 "GROUP BY 1 ORDER BY 1", tr).encode()).fetchall()
    assert [c for _, c in groups] == [15, 15, 15, 15, 1]
    assert float(groups[0][0]) == base.timestamp()
