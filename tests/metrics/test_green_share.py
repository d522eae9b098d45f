from fractions import Fraction

import pytest

from metrics.green_share import THRESHOLD, green_share


@pytest.mark.parametrize("green, consumption, qualifies", [
    (3_000_000, 10_000_000, True),      # exactly 30 %: 以上 includes the number (Civil Code Art. 1259)
    (2_999_999, 10_000_000, False),     # 1 Wh short of 30 %
    (299_999_999_999, 1_000_000_000_000, False),  # 29.9999999999 %: a float percent rounds to 30.0
    (1, 3, True),                       # 33.3 %
    (0, 5, False),
])
def test_thirty_percent_inclusive_and_exact(green, consumption, qualifies):
    # 2024-2 §三(一), 2025-5 §三(三): 消费绿电比例在30%以上
    r = green_share(green, consumption)
    assert r.qualifies is qualifies
    assert r.share == Fraction(green, consumption)


def test_a_share_a_float_would_round_the_wrong_way():
    # 0.1 + 0.2 style trap: 3 / 10 computed in floats is 0.30000000000000004 > 0.3, but
    # 0.3 * 10 in floats... the decision must rest on integers only.
    green, consumption = 30_000_000_000_000_001, 100_000_000_000_000_000
    assert green / consumption == 0.3  # a float cannot tell these apart
    assert green_share(green, consumption).qualifies is True
    assert green_share(green - 2, consumption).qualifies is False
    assert (green - 2) / consumption == 0.3  # … and would have said it qualifies


@pytest.mark.parametrize("green, consumption, match", [
    (1.5, 10, "whole Wh"), (-1, 10, "must not be negative"), (1, 0, "consumption_wh is 0"),
    (11, 10, "exceeds"),
])
def test_bad_input(green, consumption, match):
    with pytest.raises(ValueError, match=match):
        green_share(green, consumption)


def test_threshold_is_thirty_percent():
    assert THRESHOLD == Fraction(30, 100)


# --- the R1 decision with trades, certificates, completeness, gap and projection (issue 4) ---

from datetime import date  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from metrics.green_share import (  # noqa: E402
    COMPLETENESS_THRESHOLD, assess_green_share, certificates_to_buy, missing_green_wh, project_year_end,
)
from metrics.ledger import CertificateBlock, Trade, ledger_green, serial_range, validity_problem  # noqa: E402


def test_exactly_30_000_percent_with_trades_and_certificates_qualifies():
    # R1 2024-2 §三(一), 2025-5 §三(三): green = on-site + trades + GEC; exactly 30.000 % qualifies
    # (以上 includes the number, Civil Code Art. 1259)
    r = assess_green_share(1_000_000_000, 10_000_000_000, trade_wh=1_500_000_000, certificate_wh=500_000_000)
    assert r.share == Fraction(3, 10) and r.status == "qualifies"
    assert r.missing_wh == 0 and r.certificates_to_buy == 0


def test_one_wh_short_does_not_qualify_and_one_certificate_closes_it():
    # R1: 1 Wh below 30 % is below; the gap is whole certificates (1 GEC = 1 MWh), rounded up
    r = assess_green_share(2_999_999_999, 10_000_000_000)
    assert r.status == "does_not_qualify"
    assert (r.missing_wh, r.certificates_to_buy) == (1, 1)


def test_share_a_float_would_round_the_wrong_way_in_the_assessment():
    # R1 compared exactly (README R1: "never with a float that can flip at the boundary"):
    # three hours of 0.7 kWh green against 7 kWh consumed is exactly 30 %, but summed as float kWh
    # it is 2.0999999999999996 kWh -> 29.999999999999993 % and a float test says "below"
    assert sum([0.7] * 3) / 7 < 0.3
    r = assess_green_share(sum([700] * 3), 7_000)  # the same energy in integer Wh
    assert r.share == Fraction(3, 10) and r.status == "qualifies"
    # and the other way: 0.3 * C rounds down in floats for a huge C, the exact gap is still 1 Wh
    c = 9_999_999_999_999_999
    assert assess_green_share(2_999_999_999_999_999, c).missing_wh == 1


def test_low_completeness_makes_the_result_unknown():
    # issue 4: unknown below a completeness threshold, default 95 %
    assert COMPLETENESS_THRESHOLD == Fraction(95, 100)
    r = assess_green_share(5_000, 10_000, completeness=Fraction(94, 100))
    assert r.status == "unknown" and r.share == Fraction(1, 2)
    assert assess_green_share(5_000, 10_000, completeness=Fraction(95, 100)).status == "qualifies"
    assert assess_green_share(0, 0).status == "unknown"


def test_green_is_capped_at_consumption():
    r = assess_green_share(10, 100, certificate_wh=1_000_000)
    assert r.green_wh == 100 and r.share == 1


def test_missing_and_certificates_round_up():
    assert missing_green_wh(0, 10) == 3
    assert missing_green_wh(0, 11) == 4  # ceil(3.3)
    assert certificates_to_buy(1) == 1 and certificates_to_buy(2_000_000) == 2 and certificates_to_buy(0) == 0
    with pytest.raises(ValueError, match="-1 must not be negative"):
        certificates_to_buy(-1)


def test_year_end_projection_scales_metered_energy_not_the_ledger():
    # a quarter of the year behind us: 250 MWh consumed, 50 MWh on-site green, 10 MWh certificates
    p = project_year_end(50_000_000, 250_000_000, 10_000_000, elapsed_intervals=8_760, year_intervals=35_040)
    assert (p.onsite_green_wh, p.consumption_wh) == (200_000_000, 1_000_000_000)
    assert p.share == Fraction(210, 1000) and p.qualifies is False
    assert p.certificates_to_buy == 90  # 300 - 210 MWh
    with pytest.raises(ValueError, match="elapsed_intervals 0"):
        project_year_end(0, 0, 0, 0, 35_040)


@pytest.mark.parametrize("name, v, match", [("onsite_green_wh", 1.5, "whole Wh"), ("trade_wh", -1, "negative")])
def test_assessment_bad_input(name, v, match):
    kwargs = {"onsite_green_wh": 1, "consumption_wh": 10, "trade_wh": 0}
    kwargs[name] = v
    with pytest.raises(ValueError, match=f"{name}.*{match}|{match}.*{name}"):
        assess_green_share(kwargs.pop("onsite_green_wh"), kwargs.pop("consumption_wh"), **kwargs)


def block(first, last=None, produced=date(2025, 1, 1), used=date(2025, 3, 1), trade=None):
    a, b = serial_range(first, last)
    return CertificateBlock(a, b, produced, used, trade)


def test_ledger_counts_trade_once_and_not_its_bundled_certificates():
    # R1: a certificate bundled with a green-power trade is not counted again
    g = ledger_green([Trade("T1", date(2025, 3, 31), 100_000_000)],
                     [block("G001", "G100", trade="T1"), block("G101", "G120")], date(2025, 1, 1), date(2026, 1, 1))
    assert (g.trade_wh, g.certificate_wh, len(g.bundled)) == (100_000_000, 20_000_000, 1)


def test_ledger_rejects_a_serial_used_twice_and_an_expired_certificate():
    # R1: a serial counts once, ever; issue 4: 2 years from the production month
    g = ledger_green([], [block("G001", "G010"), block("G010", used=date(2025, 4, 1)),
                          block("G500", produced=date(2023, 2, 1), used=date(2025, 2, 1))],
                     date(2025, 1, 1), date(2026, 1, 1))
    assert g.certificate_wh == 10_000_000
    assert [why for _, why in g.rejected] == [
        "used on 2025-02-01, outside its validity: produced 2023-02, valid 2 years, i.e. before 2025-02-01",
        "serials overlap G001..G010, already used: a serial counts once",
    ]
    assert validity_problem(date(2023, 2, 1), date(2025, 1, 31)) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 364), st.integers(1, 5_000_000)), max_size=30), st.integers(1, 364))
def test_splitting_a_period_and_summing_gives_the_whole(entries, cut):
    # trades counted by settlement date: [Jan 1, cut) + [cut, Jan 1 next) == the year
    trades = [Trade(f"T{i}", date.fromordinal(date(2025, 1, 1).toordinal() + d), wh) for i, (d, wh) in enumerate(entries)]
    certs = [block(f"G{i:04d}", used=date.fromordinal(date(2025, 1, 1).toordinal() + d)) for i, (d, _) in enumerate(entries)]
    mid = date.fromordinal(date(2025, 1, 1).toordinal() + cut)
    whole = ledger_green(trades, certs, date(2025, 1, 1), date(2026, 1, 1))
    a = ledger_green(trades, certs, date(2025, 1, 1), mid)
    b = ledger_green(trades, certs, mid, date(2026, 1, 1))
    assert a.green_wh + b.green_wh == whole.green_wh


# -- display at the threshold (docs/accounting.md "What the result shows") -------------------------

@pytest.mark.parametrize("share, text", [
    (Fraction(2_999_960, 10_000_000), "29.999 %"),       # 29.9996 %: cut, never rounded up to 30.000
    (Fraction(29_999_999, 100_000_000), "29.999 %"),
    (Fraction(3, 10), "30.000 %"),                        # the threshold itself: reaches (inclusive)
    (Fraction(3, 10) + Fraction(1, 10**9), "30.000 %"),
    (Fraction(0), "0.000 %"),
    (Fraction(1), "100.000 %"),
    (None, "—"),
])
def test_percent_text_shows_the_digits_that_decide(share, text):
    from metrics.green_share import THRESHOLD, percent_text

    assert percent_text(share, threshold=THRESHOLD) == text


@given(st.fractions(min_value=0, max_value=1, max_denominator=10**12))
def test_a_share_below_30_percent_never_prints_as_30_or_more_and_one_above_never_below(share):
    from decimal import Decimal

    from metrics.green_share import THRESHOLD, percent_text

    shown = Decimal(percent_text(share, threshold=THRESHOLD).removesuffix(" %"))
    assert (shown < 30) == (share < THRESHOLD)


def test_plural():
    from metrics.green_share import plural

    assert [plural(n, "certificate") for n in (0, 1, 2)] == ["0 certificates", "1 certificate", "2 certificates"]
