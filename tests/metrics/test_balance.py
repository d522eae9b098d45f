from datetime import datetime, timedelta, timezone

import pytest

from metrics.balance import BatteryPool, site_balance, totals
from metrics.intervals import IntervalEnergy

T0 = datetime(2025, 6, 21, tzinfo=timezone.utc)


def series(*values, estimated=False):
    return {T0 + timedelta(minutes=15 * i): IntervalEnergy(T0 + timedelta(minutes=15 * i), v, estimated)
            for i, v in enumerate(values)}


def test_consumption_is_import_minus_export_plus_pv_plus_discharge_minus_charge():
    bal, _ = site_balance({
        "grid_import": series(100), "grid_export": series(30), "pv_generation": series(200),
        "storage_charge": series(50), "storage_discharge": series(20),
    })
    (b,) = bal
    assert b.consumption_wh == 100 - 30 + 200 + 20 - 50
    assert b.pv_export_wh == 30 and b.pv_to_battery_wh == 50 and b.pv_direct_wh == 120
    assert b.pv_self_consumed_wh == 170


def test_battery_charged_half_from_grid_discharges_half_green():
    # interval 1: 100 Wh PV all into the battery, plus 100 Wh from the grid into the battery
    # interval 2: the battery discharges 100 Wh to the load: half of it is green (R1: discharge is
    # green only to the extent it was charged from on-site renewables)
    bal, pool = site_balance({
        "grid_import": series(300, 500), "pv_generation": series(100, 0),
        "storage_charge": series(200, 0), "storage_discharge": series(0, 100),
    })
    assert bal[0].pv_to_battery_wh == 100 and bal[0].grid_to_battery_wh == 100
    assert bal[0].green_wh == 0
    assert bal[1].green_discharge_wh == 50
    assert bal[1].green_wh == 50
    assert pool == BatteryPool(total_wh=100, green_wh=50)


def test_energy_already_in_the_battery_is_not_green():
    bal, _ = site_balance({"grid_import": series(0), "storage_discharge": series(80)})
    assert bal[0].consumption_wh == 80 and bal[0].green_wh == 0


def test_rounding_never_makes_discharge_greener():
    bal, _ = site_balance({"pv_generation": series(1, 0), "grid_import": series(2, 0),
                           "storage_charge": series(3, 0), "storage_discharge": series(0, 2)})
    assert bal[1].green_discharge_wh == 0  # 2 * 1/3 rounds down


def test_estimated_propagates_and_totals_add_up():
    bal, _ = site_balance({"grid_import": series(10, 20, estimated=True), "pv_generation": series(5, 5)})
    t = totals(bal)
    assert (t.intervals, t.estimated_intervals, t.consumption_wh, t.green_wh) == (2, 2, 40, 10)


def test_unknown_role_and_negative_energy_raise():
    with pytest.raises(ValueError, match="unknown roles"):
        site_balance({"wind": series(1)})
    with pytest.raises(ValueError, match="grid_import energy -1 Wh"):
        site_balance({"grid_import": series(-1)})
