"""Tests run in both storage modes (plain PostgreSQL here, TimescaleDB 2.28 elsewhere), so
none may do what only plain mode allows. In TimescaleDB mode ``energy_hourly`` is a continuous
aggregate and ``energy_daily`` a view: TRUNCATE of either fails there. Tests empty them through
``tests.flows.test_rollup.clear_rollups``, which truncates them only in plain mode; this check keeps
a literal TRUNCATE (or DELETE) of them from coming back (four did, in a merge)."""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROLLUP_VIEWS = re.compile(r"(TRUNCATE|DELETE\s+FROM)\b[^\"']*\benergy_(hourly|daily)\b", re.IGNORECASE)


def test_no_test_truncates_what_is_a_view_in_timescaledb_mode():
    found = [f"{path.relative_to(TESTS)}:{n}: {line.strip()}"
             for path in sorted(TESTS.rglob("*.py")) if path.name != Path(__file__).name
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if ROLLUP_VIEWS.search(line)]
    assert not found, "use clear_rollups (tests/flows/test_rollup.py) instead:\n" + "\n".join(found)
