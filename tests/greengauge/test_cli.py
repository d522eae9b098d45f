"""The command line against a real database."""

from pathlib import Path

from typer.testing import CliRunner

from greengauge.cli import app
from greengauge.demo import DEMO_SITE

runner = CliRunner()


def test_db_upgrade_then_site_apply_then_report(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 0, r.output
    import psycopg

    from store.db import storage_mode

    with psycopg.connect(db_url) as c:
        mode = storage_mode(c)  # the mode this server gives: postgresql here, timescaledb where preloaded
    assert f"schema up to date (0 applied now); storage mode: {mode}" in r.output
    r = runner.invoke(app, ["site", "apply", str(DEMO_SITE)])
    assert r.exit_code == 0, r.output
    assert "applied jj-shoes/main — 4 devices, 13 points" in r.output
    r = runner.invoke(app, ["report", "balance", "--enterprise", "jj-shoes", "--day", "2025-06-21"])
    assert r.exit_code == 0, r.output
    assert "no consumption in the period" in r.output


def test_errors_are_one_clear_line(monkeypatch, tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text(Path(str(DEMO_SITE)).read_text().replace("generic-bess-meter", "nope"))
    r = runner.invoke(app, ["site", "check", str(bad)])
    assert r.exit_code == 2
    assert "site.yaml line 38: devices[2].profile: profile 'nope' does not exist" in r.output
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", "postgresql://127.0.0.1:1/nothing")
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 2
    assert "cannot reach the database at postgresql://127.0.0.1:1/nothing" in r.output
    r = runner.invoke(app, ["report", "balance", "--enterprise", "x"])
    assert r.exit_code == 2


import pytest  # noqa: E402


@pytest.mark.parametrize("command", [
    ["site", "check"], ["site", "apply"], ["collect"], ["ledger", "import"], ["facts", "import"],
    ["production", "import"], ["import", "readings"],
])
@pytest.mark.parametrize("case", ["missing", "directory", "not-utf8"])
def test_a_file_that_cannot_be_read_is_one_line_naming_it(db_url, monkeypatch, tmp_path, command, case):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    path = tmp_path / "input.csv"
    if case == "directory":
        path.mkdir()
    elif case == "not-utf8":
        path.write_bytes("enterprise,kind\njj-shoes,trade 绿电\n".encode("gb18030"))  # saved as GBK by Excel
    r = runner.invoke(app, [*command, str(path)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    [line] = [line for line in r.output.splitlines() if line.strip()]
    assert line.startswith(f"error: {path}: "), line
    assert {"missing": "file not found; check the path", "directory": "is a directory, not a file",
            "not-utf8": "not UTF-8 text (byte 0xc2 at offset 31); save it as UTF-8"}[case] in line


def test_error_texts_are_printed_as_they_are_not_as_markup(tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text(Path(str(DEMO_SITE)).read_text().replace("code: jj-shoes", "code: 'JJ Shoes!'", 1))
    r = runner.invoke(app, ["site", "check", str(bad)])
    assert r.exit_code == 2
    assert "[a-z0-9]" in r.output, r.output  # the pattern the code must match, not swallowed as a style


@pytest.mark.parametrize("mwh, message", [
    ("1e400", "'1e400' MWh is more than one entry can be (at most 10,000,000 MWh"),  # was a traceback
    ("10000000.000001", "'10000000.000001' MWh is more than one entry can be"),  # just above the bound
    ("inf", "'inf' MWh must be a positive number"),
])
def test_ledger_mwh_is_bounded(db_url, monkeypatch, tmp_path, mwh, message):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    runner.invoke(app, ["site", "apply", str(DEMO_SITE)])
    csv = tmp_path / "ledger.csv"
    csv.write_text(f"kind,enterprise,reference,date,mwh\ntrade,jj-shoes,T1,2025-03-01,{mwh}\n")
    r = runner.invoke(app, ["ledger", "import", str(csv)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert f"ledger.csv line 2: field 'mwh': {message}" in r.output.replace("\n", " ")
    r = runner.invoke(app, ["ledger", "add", "trade", "--enterprise", "jj-shoes", "--reference", "T2",
                            "--settled-on", "2025-03-01", "--mwh", mwh])
    assert r.exit_code == 2 and message in r.output.replace("\n", " "), r.output
    csv.write_text("kind,enterprise,reference,date,mwh\ntrade,jj-shoes,T1,2025-03-01,10000000\n")  # the bound itself
    assert runner.invoke(app, ["ledger", "import", str(csv)]).exit_code == 0
