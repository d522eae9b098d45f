"""The certificate ledger and meter events in the real PostgreSQL.

Rule R1 (2024-2 §三(一), 2025-5 §三(三)): certificates retired for the enterprise count, a
certificate bundled with a trade is not counted again, a serial counts once, ever. Issue 4: a
certificate is valid 2 years from its production month; imports are all-or-nothing.
"""

from datetime import date, datetime, timezone

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greengauge.demo import DEMO_SITE
from model.site import load_site
from metrics.ledger import ledger_green
from store.events import record_replacement, replacements
from store.ledger import LedgerError, add_entries, import_csv, ledger_for, parse_csv
from store.sites import apply_site

HEADER = "kind,enterprise,reference,date,mwh,serial_first,serial_last,production_month,trade\n"


@pytest.fixture
def site(conn):
    ids = apply_site(conn, load_site(DEMO_SITE))
    conn.execute("INSERT INTO enterprise (code, name) VALUES ('other', 'Another enterprise')")
    conn.commit()
    return ids


def write(tmp_path, body, name="ledger.csv"):
    p = tmp_path / name
    p.write_text(HEADER + body, encoding="utf-8")
    return p


def count(conn, table):
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_import_trade_with_bundled_certificates_counts_them_once(conn, site, tmp_path):
    # R1: a certificate that came bundled with a green-power trade must not be counted again
    p = write(tmp_path, "trade,jj-shoes,T-2025-001,2025-03-31,100.5,,,,\n"
                        "gec,jj-shoes,,2025-03-31,,GEC2025020000000001,GEC2025020000000100,2025-02,T-2025-001\n"
                        "gec,jj-shoes,R-7,2025-04-02,,GEC2025020000000101,GEC2025020000000150,2025-02,\n")
    assert import_csv(conn, p) == 3
    conn.commit()
    trades, certs = ledger_for(conn, "jj-shoes")
    g = ledger_green(trades, certs, date(2025, 1, 1), date(2026, 1, 1))
    assert g.trade_wh == 100_500_000  # 100.5 MWh settled
    assert g.certificate_wh == 50_000_000  # the 50 retired on their own; the 100 bundled are in the trade
    assert [c.count for c in g.bundled] == [100]
    assert g.green_wh == 150_500_000


def test_certificate_used_twice_is_rejected_by_the_database(conn, site, tmp_path):
    # R1: a certificate serial is counted once, ever — also for another enterprise, another year
    import_csv(conn, write(tmp_path, "gec,jj-shoes,R-1,2025-04-02,,GEC0000000010,GEC0000000020,2025-02,\n"))
    conn.commit()
    with pytest.raises(LedgerError, match=r"again.csv line 3: certificate GEC0000000015 rejected: a serial "
                                          r"counts once, ever: GEC0000000010..GEC0000000020 already used by jj-shoes"):
        import_csv(conn, write(tmp_path, "gec,other,X,2026-01-05,,GEC0000000021,,2025-12,\n"
                                         "gec,other,X,2026-01-05,,GEC0000000015,,2025-02,\n", "again.csv"))
    conn.rollback()
    # all-or-nothing: the good first row of the refused file is not there either
    assert count(conn, "certificate") == 1
    # the constraint holds against plain SQL too, whatever the application does
    with pytest.raises(psycopg.errors.ExclusionViolation):
        conn.execute("""INSERT INTO certificate (enterprise_id, serial_prefix, serial_first, serial_last, serial_digits,
                        production_month, used_on) SELECT enterprise_id, 'GEC', 20, 30, 10, '2025-02-01', '2025-05-01'
                        FROM enterprise WHERE code = 'other'""")


@pytest.mark.parametrize("produced, used, reason", [
    ("2023-01", "2025-01-01", "outside its validity: produced 2023-01, valid 2 years, i.e. before 2025-01-01"),
    ("2025-06", "2025-05-31", "before its production month 2025-06"),
])
def test_certificate_outside_validity_is_rejected_with_the_reason(conn, site, tmp_path, produced, used, reason):
    # issue 4: valid for 2 years from its production month
    with pytest.raises(LedgerError, match=f"ledger.csv line 2: field 'date': certificate GEC1 rejected: used on {used}, "
                                          + reason.replace("(", r"\(")):
        import_csv(conn, write(tmp_path, f"gec,jj-shoes,,{used},,GEC1,,{produced},\n"))


def test_last_valid_day_is_accepted(conn, site, tmp_path):
    assert import_csv(conn, write(tmp_path, "gec,jj-shoes,,2024-12-31,,GEC1,,2023-01,\n")) == 1


@pytest.mark.parametrize("row, match", [
    ("trade,jj-shoes,T1,2025-13-01,5,,,,", "line 2: field 'date': '2025-13-01' is not a date"),
    ("trade,jj-shoes,T1,2025-01-01,-5,,,,", "line 2: field 'mwh': '-5' MWh must be a positive number"),
    ("trade,jj-shoes,T1,2025-01-01,0.0000001,,,,", "line 2: field 'mwh': '0.0000001' MWh is finer than 1 Wh"),
    ("gec,jj-shoes,,2025-01-01,,GEC9,GEC1,2025-01,", "line 2: field 'serial_first'/'serial_last': .* runs backwards"),
    ("gec,jj-shoes,,2025-01-01,,GEC1,,2025/01,", "line 2: field 'production_month'"),
    ("coupon,jj-shoes,,2025-01-01,,,,,", "line 2: field 'kind': 'coupon'"),
    ("trade,,T1,2025-01-01,5,,,,", "line 2: field 'enterprise' is empty"),
])
def test_import_errors_name_the_row_and_field(row, match):
    with pytest.raises(LedgerError, match=match):
        parse_csv(HEADER + row + "\n")


def test_import_is_all_or_nothing_and_names_the_database_refusal(conn, site, tmp_path):
    p = write(tmp_path, "trade,jj-shoes,T1,2025-01-31,10,,,,\n"
                        "gec,jj-shoes,,2025-01-31,,GEC01,GEC11,2025-01,T1\n")
    # the database part of the check (trade volume vs certificates delivered) names the row too
    with pytest.raises(LedgerError, match="ledger.csv line 3: certificate GEC01..GEC11: trade 'T1' "
                                          "settled 10 MWh, fewer than the 11 certificates"):
        import_csv(conn, p)
    conn.rollback()
    assert (count(conn, "green_trade"), count(conn, "certificate")) == (0, 0)
    with pytest.raises(LedgerError, match="line 2: no enterprise 'nobody'"):
        import_csv(conn, write(tmp_path, "trade,nobody,T2,2025-01-31,10,,,,\n"))


def test_bundled_certificate_of_another_enterprises_trade_is_refused(conn, site):
    from store.ledger import CertificateEntry, TradeEntry
    from metrics.ledger import serial_range

    add_entries(conn, [TradeEntry("other", "T9", date(2025, 1, 31), 5_000_000)])
    a, b = serial_range("S1")
    with pytest.raises(LedgerError, match="belongs to another enterprise"):
        add_entries(conn, [CertificateEntry("jj-shoes", a, b, date(2025, 1, 1), date(2025, 1, 31), "T9")])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 500), st.integers(0, 20)), min_size=1, max_size=6,
                unique_by=lambda t: t[0]))
def test_importing_the_same_ledger_twice_changes_nothing(conn, site, tmp_path, blocks):
    # a replayed import is refused whole (every serial is already used) and the totals stay
    conn.execute("TRUNCATE certificate, green_trade")
    conn.commit()
    starts = sorted(s * 100 for s, _ in blocks)
    body = "".join(f"gec,jj-shoes,,2025-05-01,,G{s:08d},G{s + n:08d},2025-04,\n"
                   for s, (_, n) in zip(starts, blocks))
    p = write(tmp_path, body)
    import_csv(conn, p)
    conn.commit()
    before = ledger_green(*ledger_for(conn, "jj-shoes"), date(2025, 1, 1), date(2026, 1, 1))
    with pytest.raises(LedgerError, match="a serial counts once"):
        import_csv(conn, p)
    conn.rollback()
    after = ledger_green(*ledger_for(conn, "jj-shoes"), date(2025, 1, 1), date(2026, 1, 1))
    assert after == before
    assert before.certificate_wh == sum(n + 1 for _, n in blocks) * 1_000_000


def test_meter_replacement_is_stored_and_read_back(conn, site):
    t = datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)
    rid = record_replacement(conn, "jj-shoes.main.grid.energy_import", t, 5_300, 12, "failed calibration")
    conn.commit()
    pid = site["jj-shoes.main.grid.energy_import"]
    (r,) = replacements(conn, [pid])[pid]
    assert (rid > 0, r.ts, r.old_final_wh, r.new_initial_wh, r.reason) == (True, t, 5_300, 12, "failed calibration")
    with pytest.raises(ValueError, match="already has a replacement recorded"):
        record_replacement(conn, "jj-shoes.main.grid.energy_import", t, 1, 1, "again")
    with pytest.raises(ValueError, match="no point 'nope'"):
        record_replacement(conn, "nope", t, 1, 1, "x")
    with pytest.raises(ValueError, match="is a gauge, not a counter"):
        record_replacement(conn, "jj-shoes.main.grid.active_power", t, 1, 1, "x")
