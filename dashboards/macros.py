"""Grafana's PostgreSQL query interpolation, reproduced so that panel SQL can run in tests.

A panel's ``rawSql`` reaches PostgreSQL after three steps, applied here in Grafana's order:

1. **Template variables** (the browser, ``SqlDatasource.interpolateVariable``): ``$name``,
   ``${name}``, ``[[name]]`` and ``${name:format}``. A single-value variable that is neither
   multi-value nor include-all has its ``'`` doubled and no quotes added (so panels write
   ``'$enterprise'``); a multi-value or include-all variable becomes a comma-separated list of
   literals, each quoted ``'…'`` with ``'`` doubled (so panels write ``IN ($park)``). "All"
   without a custom all value expands to every option; a custom all value is inserted raw.
   Unknown names (``$__timeFilter``, ``$1``) are left alone.
2. **Global SQL substitutions** (``sqleng.Interpolate``): ``$__interval_ms``, ``$__interval``,
   ``$__unixEpochFrom()``, ``$__unixEpochTo()``.
3. **The PostgreSQL macro engine** (``pkg/tsdb/grafana-postgresql-datasource/macros.go``): every
   ``$name(args)`` (args may not contain ``)``), with ``$__time``, ``$__timeEpoch``,
   ``$__timeFilter``, ``$__timeFrom``, ``$__timeTo``, ``$__timeGroup``, ``$__timeGroupAlias``,
   ``$__unixEpochFilter``, ``$__unixEpochNanoFilter``, ``$__unixEpochNanoFrom``,
   ``$__unixEpochNanoTo``, ``$__unixEpochGroup``, ``$__unixEpochGroupAlias``; any other name is an
   error ("unknown macro"), as in Grafana.

Times are formatted as Go's ``time.RFC3339Nano`` in UTC (``2025-06-21T00:00:00Z``, fractions
without trailing zeros) and interval seconds as Go's ``%v`` of a float64 (``300``, ``1e+06``).

References: Grafana documentation, "PostgreSQL query editor", sections Macros and Templating
(grafana.com/docs/grafana/latest/datasources/postgres/query-editor/), and the source files named
above (Grafana 11.6). Where the two differ, the source wins: older documentation shows
``$__timeGroup`` as ``(extract(epoch from c)/300)::bigint*300`` (rounding), the server has long
sent ``floor(extract(epoch from c)/300)*300`` (truncating to the bucket start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal


class MacroError(ValueError):
    """A macro Grafana would refuse (its message is Grafana's)."""


@dataclass(frozen=True)
class Variable:
    """A dashboard variable's current value as Grafana holds it.

    ``value`` is a string, or a list of strings for a multi-value selection; ``"$__all"`` (or
    ``["$__all"]``) selects All, which is ``all_value`` when set, else every one of ``options``.
    """

    value: str | list[str]
    multi: bool = False
    include_all: bool = False
    options: tuple[str, ...] = ()
    all_value: str | None = None


@dataclass(frozen=True)
class TimeRange:
    start: datetime  # aware
    end: datetime
    interval: timedelta = field(default=timedelta(minutes=1))  # what Grafana computed for the panel

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"time range {self.start} .. {self.end}: give times with a UTC offset")


# -- formatting the way Go does ---------------------------------------------------------------------

def rfc3339nano(t: datetime) -> str:
    """Go's ``t.UTC().Format(time.RFC3339Nano)``: ``2025-06-21T16:00:00.5Z``."""
    u = t.astimezone(timezone.utc)
    s = u.strftime("%Y-%m-%dT%H:%M:%S")
    if u.microsecond:
        s += "." + f"{u.microsecond:06d}".rstrip("0")
    return s + "Z"


def go_float(x: float) -> str:
    """Go's ``fmt.Sprintf("%v", float64)``: ``%g`` with the shortest digits, which uses ``%e``
    when the decimal exponent is below -4 or at least 6 (``300``, ``0.5``, ``1e+06``, ``2.592e+06``)."""
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    d = Decimal(repr(abs(float(x))))
    t = d.normalize().as_tuple()
    digits = "".join(map(str, t.digits))
    exp = len(digits) + t.exponent - 1  # position of the first digit
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    dp = exp + 1  # digits before the point
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


_UNITS = {"ms": timedelta(milliseconds=1), "s": timedelta(seconds=1), "m": timedelta(minutes=1),
          "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1),
          "M": timedelta(days=30), "y": timedelta(days=365)}
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)$")


def parse_interval(text: str) -> timedelta:
    """``gtime.ParseInterval`` for the forms panels use: ``15m``, ``1h``, ``1d``, ``500ms``."""
    m = _INTERVAL.match(text.strip())
    if not m:
        raise MacroError(f"error parsing interval {text}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def format_interval(d: timedelta) -> str:
    """``gtime.FormatInterval``: the largest whole unit (``1m``, ``15m``, ``1h``, ``1d``, ``500ms``)."""
    ms = int(d / timedelta(milliseconds=1))
    for unit, size in (("y", 31536000000), ("w", 604800000), ("d", 86400000), ("h", 3600000),
                       ("m", 60000), ("s", 1000)):
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


# -- 1. template variables -----------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")


def _literal(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _values(var: Variable) -> list[str] | str:
    v = var.value
    is_all = v == "$__all" or v == ["$__all"]
    if is_all and var.all_value is not None:
        return var.all_value
    if is_all:
        return list(var.options)
    return v


def _format(name: str, var: Variable, fmt: str | None) -> str:
    value = _values(var)
    if var.all_value is not None and value == var.all_value and fmt is None:
        return value  # Grafana inserts a custom all value as it is
    if fmt in (None, ""):
        if isinstance(value, str):
            return _literal(value) if (var.multi or var.include_all) else value.replace("'", "''")
        return ",".join(_literal(x) for x in value)
    items = [value] if isinstance(value, str) else value
    if fmt == "raw":
        return ",".join(items) if not isinstance(value, str) else value
    if fmt == "csv":
        return ",".join(items)
    if fmt in ("singlequote", "sqlstring"):
        return ",".join("'" + x.replace("'", "\\'" if fmt == "singlequote" else "''") + "'" for x in items)
    if fmt == "doublequote":
        return ",".join('"' + x.replace('"', '\\"') + '"' for x in items)
    raise MacroError(f"variable {name}: format {fmt!r} is not supported here (raw, csv, singlequote, "
                     "sqlstring, doublequote)")


def interpolate_variables(sql: str, variables: dict[str, Variable]) -> str:
    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name not in variables:
            return m.group(0)
        return _format(name, variables[name], fmt)

    return _VARIABLE.sub(repl, sql)


# -- 2. global substitutions -----------------------------------------------------------------------

def interpolate_globals(sql: str, tr: TimeRange) -> str:
    sql = sql.replace("$__interval_ms", str(int(tr.interval / timedelta(milliseconds=1))))
    sql = sql.replace("$__interval", format_interval(tr.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(tr.start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(tr.end.timestamp())))
    return sql


# -- 3. the PostgreSQL macro engine ------------------------------------------------------------------

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")


def _epoch_ns(t: datetime) -> int:
    u = t.astimezone(timezone.utc)
    return int(u.timestamp()) * 1_000_000_000 + u.microsecond * 1000


def _macro(name: str, args: list[str], tr: TimeRange, timescaledb: bool) -> str:
    def need_column() -> str:
        if not args or args == [""]:
            raise MacroError(f"missing time column argument for macro {name}")
        return args[0]

    if name == "__time":
        return f'{need_column()} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {need_column()}) as "time"'
    if name == "__timeFilter":
        return f"{need_column()} BETWEEN '{rfc3339nano(tr.start)}' AND '{rfc3339nano(tr.end)}'"
    if name == "__timeFrom":
        return f"'{rfc3339nano(tr.start)}'"
    if name == "__timeTo":
        return f"'{rfc3339nano(tr.end)}'"
    if name in ("__timeGroup", "__unixEpochGroup"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        secs = parse_interval(args[1].strip("'")).total_seconds()
        if name == "__unixEpochGroup":
            return f"floor(({args[0]})/{go_float(secs)})*{go_float(secs)}"
        if timescaledb:
            return f"time_bucket('{secs:.3f}s',{args[0]})"
        return f"floor(extract(epoch from {args[0]})/{go_float(secs)})*{go_float(secs)}"
    if name in ("__timeGroupAlias", "__unixEpochGroupAlias"):
        return _macro(name[:-len("Alias")], args, tr, timescaledb) + ' AS "time"'
    if name == "__unixEpochFilter":
        c = need_column()
        return f"{c} >= {int(tr.start.timestamp())} AND {c} <= {int(tr.end.timestamp())}"
    if name == "__unixEpochNanoFilter":
        c = need_column()
        return f"{c} >= {_epoch_ns(tr.start)} AND {c} <= {_epoch_ns(tr.end)}"
    if name == "__unixEpochNanoFrom":
        return str(_epoch_ns(tr.start))
    if name == "__unixEpochNanoTo":
        return str(_epoch_ns(tr.end))
    raise MacroError(f"unknown macro {name!r}")


def interpolate_macros(sql: str, tr: TimeRange, *, timescaledb: bool = False) -> str:
    def repl(m: re.Match) -> str:
        name = m.group(1)
        at = sql.find(m.group(0)) + len(m.group(0))  # Grafana looks after the first occurrence
        if name == "__timeGroup" and sql[at:at + 1] == ",":
            name = "__timeGroupAlias"  # Grafana's pre-5.3 compatibility: a ',' right after adds AS "time"
        args = [a.strip(" ") for a in m.group(2).split(",")]
        return _macro(name, args, tr, timescaledb)

    return _MACRO.sub(repl, sql)


def expand(sql: str, tr: TimeRange, variables: dict[str, Variable] | None = None, *,
           timescaledb: bool = False) -> str:
    """The SQL Grafana sends to PostgreSQL for ``sql`` over ``tr`` with ``variables``."""
    sql = interpolate_variables(sql, variables or {})
    sql = interpolate_globals(sql, tr)
    return interpolate_macros(sql, tr, timescaledb=timescaledb)
