"""dashboards/alerts.py: every rule's SQL as each organization's reader role, on the demo plant and
the second park: one numeric value column, labels as text, only the organization's own rows."""

import psycopg
import pytest

from dashboards.alerts import file_groups, rule_models, rules, to_api
from dashboards.macros import TimeRange
from dashboards.run import run_sql
from grafana_foundation_sdk.models.alerting import Rule

RULES = rules()


def fire(rule, value) -> bool:
    return value > rule.threshold if rule.evaluator == "gt" else value < rule.threshold


@pytest.mark.parametrize("rule", RULES, ids=[r.key for r in RULES])
def test_rule_sql_as_each_reader(plant_db, rule):
    tr = TimeRange(plant_db.as_of.replace(minute=0), plant_db.as_of)
    seen = {}
    for org, url in plant_db.readers.items():
        with psycopg.connect(url) as conn:
            cols, rows = run_sql(conn, rule.sql, tr)
        assert cols == (*rule.label_columns, rule.value_column)
        for r in rows:
            assert all(isinstance(v, str) for v in r[:-1]) and isinstance(r[-1], float)
        seen[org] = {r[0] for r in rows}
    assert seen["jinjiang-eco"] == {"jj-shoes"} and seen["xiamen-torch"] == {"xm-textile"}
    assert seen["bureau"] == set(plant_db.codes)


def test_rules_fire_on_the_demo_plant(plant_db):
    """The battery is away, the recycling meter went silent, one day of a year is far below 95 %
    complete; the projection of the demo day's 57 % share stays above 30 %."""
    tr = TimeRange(plant_db.as_of.replace(minute=0), plant_db.as_of)
    with psycopg.connect(plant_db.readers["jinjiang-eco"]) as conn:
        firing = {r.key: [row[:-1] for row in run_sql(conn, r.sql, tr)[1] if fire(r, row[-1])] for r in RULES}
    assert firing["device-stale"] == [("jj-shoes", "battery")]
    assert ("jj-shoes", "recycling", "stale_device") in firing["data-gap"]
    assert firing["completeness"] == [("jj-shoes", "2025")]
    assert firing["projection"] == []


def test_rules_round_trip_through_the_sdk_models():
    for rule in rule_models(3, "jinjiang-eco"):
        api = to_api(rule)
        assert Rule.from_json(api).to_json().keys() == rule.to_json().keys()
        assert api["condition"] == "B" and api["data"][1]["datasourceUid"] == "__expr__"
    g = file_groups(3, "jinjiang-eco")
    assert g["orgId"] == 3 and [r["uid"] for r in g["rules"]] == [f"gg-{r.key}-jinjiang-eco" for r in RULES]


def test_gap_minutes_is_the_threshold():
    assert [r.threshold for r in rules(45) if r.key == "data-gap"] == [45]
    with pytest.raises(ValueError, match="positive number of minutes"):
        rules(0)
