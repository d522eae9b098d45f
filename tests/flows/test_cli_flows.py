"""greengauge flows: list, parameters, backfill with progress (no Prefect server needed)."""

import pytest
from typer.testing import CliRunner

from greengauge.cli import app
from greengauge.cli_flows import parse_every, parse_params

runner = CliRunner()


def test_list_shows_schedules():
    out = runner.invoke(app, ["flows", "list", "--every", "rollup=60"])
    assert out.exit_code == 0, out.output
    assert "every 60 s" in out.output and "every 900 s" in out.output and "on demand" in out.output
    bad = runner.invoke(app, ["flows", "list", "--every", "rollup=soon"])
    assert bad.exit_code == 2 and "NAME=SECONDS" in bad.output


def test_parse_params():
    assert parse_params(["enterprise=jj-shoes", "years=[2024, 2025]", "as-of=2025-06-22T00:00:00+08:00"]) == {
        "enterprise": "jj-shoes", "years": [2024, 2025], "as_of": "2025-06-22T00:00:00+08:00"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_params(["novalue"])
    assert parse_every(["eligibility=0"]) == {"eligibility": 0}


def test_backfill_command(db_url, conn, sim_day, monkeypatch):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    day = sim_day.start.astimezone(sim_day.plant.tz).date()
    out = runner.invoke(app, ["flows", "backfill", "jj-shoes", "--from", str(day), "--to", str(day)])
    assert out.exit_code == 0, out.output
    assert "1 chunks" in out.output and "days rebalanced" in out.output
    assert conn.execute("SELECT count(*) FROM daily_balance WHERE day = %s", (day,)).fetchone()[0] == 1
    out = runner.invoke(app, ["flows", "backfill", "nope", "--from", str(day), "--to", str(day)])
    assert out.exit_code == 2 and "no enterprise 'nope'" in out.output
