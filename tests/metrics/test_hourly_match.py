"""Hourly-matched green share (issue 4, the 24/7 idea, beside rule R1's annual share)."""

from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

from metrics.balance import site_balance
from metrics.intervals import IntervalEnergy
from metrics.hourly_match import hourly_match
from metrics.ledger import CertificateBlock, LedgerGreen, Trade, serial_range

T0 = datetime(2025, 6, 30, 16, 0, tzinfo=timezone.utc)  # 2025-07-01 00:00 in Shanghai


def series(values):
    return {T0 + timedelta(minutes=15 * i): IntervalEnergy(T0 + timedelta(minutes=15 * i), v, False)
            for i, v in enumerate(values)}


def ledger(trades=(), certs=()):
    return LedgerGreen(sum(t.settled_wh for t in trades), sum(c.count for c in certs) * 1_000_000,
                       tuple(trades), tuple(certs), (), ())


def test_pv_surplus_in_one_hour_does_not_cover_another():
    # hour 1: 1 000 Wh consumed, 4 000 Wh PV of which 3 000 exported; hour 2: 1 000 Wh from the grid.
    # Annual view: 1 000 green of 2 000. Hourly: hour 1 fully green, hour 2 not: 1 000 of 2 000.
    bal, _ = site_balance({
        "pv_generation": series([1_000] * 4 + [0] * 4),
        "grid_export": series([750] * 4 + [0] * 4),
        "grid_import": series([0] * 4 + [250] * 4),
    })
    h = hourly_match(bal, ledger())
    assert (h.hours, h.consumption_wh, h.onsite_matched_wh) == (2, 2_000, 1_000)
    assert h.share == Fraction(1, 2)


def test_certificates_count_against_their_production_month_only():
    # 2 h of 1 MWh/h grid consumption in July (local); a July certificate covers 1 MWh of it,
    # a June certificate matches nothing in July, a July trade covers the rest (capped)
    bal, _ = site_balance({"grid_import": series([250_000] * 8)})
    a, b = serial_range("G1")
    c, d = serial_range("G2")
    led = ledger([Trade("T", date(2025, 7, 20), 5_000_000)],
                 [CertificateBlock(a, b, date(2025, 7, 1), date(2025, 8, 1)),
                  CertificateBlock(c, d, date(2025, 6, 1), date(2025, 8, 1))])
    h = hourly_match(bal, led)
    assert h.consumption_wh == 2_000_000
    assert h.ledger_matched_wh == 2_000_000  # July: 1 MWh certificate + 1 MWh of the 5 MWh trade
    assert h.ledger_unmatched_wh == 5_000_000  # 4 MWh of the trade and the June certificate
    assert h.share == 1


def test_hours_are_local_shanghai_hours():
    # 16:00Z-17:00Z is 00:00-01:00 on 2025-07-01 in Shanghai; 15:45Z belongs to June 30 23:00
    iv = {T0 - timedelta(minutes=15): IntervalEnergy(T0 - timedelta(minutes=15), 100, False), **series([100])}
    bal, _ = site_balance({"grid_import": iv})
    a, b = serial_range("G1")
    h = hourly_match(bal, ledger(certs=[CertificateBlock(a, b, date(2025, 7, 1), date(2025, 7, 2))]))
    assert h.hours == 2 and h.ledger_matched_wh == 100  # only the July hour's 100 Wh is matched
