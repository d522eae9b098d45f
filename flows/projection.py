"""Year-end projection of the green share and the gap to the threshold (pure functions).

These belong in :mod:`metrics` (no I/O); they live here until the metrics owner moves them, since
metrics/ is not the flows helper's to edit.

References
----------
Rule R1 of shared/policies/README.md (2024-2 §三(一), 2025-5 §三(三)): 30 %, inclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from metrics.green_share import THRESHOLD


def gap_to_threshold(green_wh: int, consumption_wh: int, threshold: Fraction = THRESHOLD) -> int:
    """More green electricity needed for ``green / consumption`` to reach ``threshold`` [Wh].

    Parameters
    ----------
    green_wh : green electricity consumed [Wh]
    consumption_wh : electricity consumed [Wh]
    threshold : the share to reach, inclusive [1]

    Returns
    -------
    the least whole Wh ``g`` with ``(green + g) / consumption >= threshold`` (consumption held
    fixed: green bought as certificates or trades does not change consumption); 0 when reached.

    Raises
    ------
    ValueError
        when an energy is negative.
    """
    if green_wh < 0 or consumption_wh < 0:
        raise ValueError(f"energies must not be negative: green {green_wh} Wh, consumption {consumption_wh} Wh")
    need = -((-consumption_wh * threshold.numerator) // threshold.denominator)  # ceil, exact
    return max(0, need - green_wh)


@dataclass(frozen=True)
class Projection:
    basis_s: int  #: length of the recent period whose rate is extended [s]
    projected_green_wh: int
    projected_consumption_wh: int
    projected_share: Fraction | None
    projected_qualifies: bool | None
    gap_now_wh: int
    gap_year_end_wh: int


def project_year_end(
    ytd_green_wh: int,
    ytd_consumption_wh: int,
    recent_green_wh: int,
    recent_consumption_wh: int,
    recent_s: int,
    remaining_s: int,
    threshold: Fraction = THRESHOLD,
) -> Projection:
    """Extend the recent rate to the end of the year.

    Parameters
    ----------
    ytd_green_wh, ytd_consumption_wh : year to date [Wh]
    recent_green_wh, recent_consumption_wh : the trailing period (e.g. 30 days) [Wh]
    recent_s : length of the trailing period [s]
    remaining_s : time left in the year [s]
    threshold : [1]

    Returns
    -------
    :class:`Projection`: year-end totals rounded down to whole Wh, the exact projected share,
    and the gap to the threshold now and at year end [Wh].

    Notes
    -----
    A linear extension of the recent rate: seasonality (PV in winter) is not modelled.
    """
    if recent_s <= 0:
        raise ValueError(f"recent_s must be positive, got {recent_s}")
    if remaining_s < 0:
        raise ValueError(f"remaining_s must not be negative, got {remaining_s}")
    g = ytd_green_wh + recent_green_wh * remaining_s // recent_s
    c = ytd_consumption_wh + recent_consumption_wh * remaining_s // recent_s
    share = Fraction(g, c) if c > 0 else None
    qualifies = (g * threshold.denominator >= c * threshold.numerator) if c > 0 else None
    return Projection(recent_s, g, c, share, qualifies,
                      gap_to_threshold(ytd_green_wh, ytd_consumption_wh, threshold),
                      gap_to_threshold(g, c, threshold))
