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
