"""The quality gate every reading passes: future timestamps and counter steps above the rating."""

from datetime import datetime, timedelta, timezone

import pytest

from collectors.health import HealthRecorder
from model.readings import Quality, Reading
from collectors.run import QualityGate
from model.site import SiteConfig

NOW = datetime(2025, 6, 21, 4, 0, tzinfo=timezone.utc)


class Still:
    def now(self):
        return NOW

    async def sleep(self, s):
        pass


SITE = SiteConfig.model_validate({
    "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
    "devices": [{"name": "grid", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": 1502,
                 "points": [{"quantity": "energy_import", "rated_power_w": 3600_000},  # 3.6 MW: 1 kWh per second
                            {"quantity": "active_power"}]}],
})
IDS = {"acme.main.grid.energy_import": 1, "acme.main.grid.active_power": 2}


def gate():
    health = HealthRecorder(lambda: None, {})
    return QualityGate(SITE, IDS, Still(), health), health


@pytest.mark.parametrize("ahead, quality", [
    (timedelta(minutes=5), Quality.GOOD),                  # exactly 5 minutes ahead: trusted
    (timedelta(minutes=5, seconds=1), Quality.SUSPECT),    # beyond: not trusted
    (timedelta(days=3650), Quality.SUSPECT),               # a device clock years off
])
def test_a_timestamp_from_the_future_is_replaced_by_the_collectors_and_flagged(ahead, quality):
    g, health = gate()
    [r] = g.check([Reading(2, NOW + ahead, 100.0)])
    assert r.quality == quality and r.value == 100.0
    assert r.ts == (NOW + ahead if quality == Quality.GOOD else NOW)
    assert health.findings_total.get("future_timestamp", 0) == (quality == Quality.SUSPECT)


def test_a_bad_reading_from_the_future_stays_bad():
    g, _ = gate()
    assert g.check([Reading(2, NOW + timedelta(hours=1), None, Quality.BAD)]) == [Reading(2, NOW, None, Quality.BAD)]


def test_a_counter_step_above_the_rating_is_suspect_and_does_not_become_the_baseline():
    g, health = gate()
    t = NOW - timedelta(minutes=10)
    steps = [
        (0, 1_000_000.0, Quality.GOOD),
        (10, 1_010_000.0, Quality.GOOD),       # 10 kWh in 10 s: exactly the rating (+1 Wh resolution)
        (20, 1_020_002.0, Quality.SUSPECT),    # 10.002 kWh in 10 s: above it
        (30, 1_040_000.0, Quality.SUSPECT),    # a spike (judged against the last good reading, at 10 s)
        (40, 1_030_000.0, Quality.GOOD),       # back in line with the last good: 20 kWh in 30 s
        (50, 5.0, Quality.GOOD),               # a drop is a reset, for metrics/ to handle
    ]
    got = g.check([Reading(1, t + timedelta(seconds=s), v) for s, v, _ in steps])
    assert [r.quality for r in got] == [q for _, _, q in steps]
    assert health.findings_total["counter_spike"] == 2


def test_points_without_a_rating_are_not_judged():
    g, _ = gate()
    got = g.check([Reading(2, NOW - timedelta(seconds=s), v) for s, v in ((2, 0.0), (1, 1e12))])
    assert [r.quality for r in got] == [Quality.GOOD, Quality.GOOD]
