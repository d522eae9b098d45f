"""Facts for the policy engine in PostgreSQL: import all or nothing, errors with line and field."""

from datetime import date
from decimal import Decimal

import pytest

from greengauge.demo import DEMO_SITE
from model.site import load_site
from store.facts import FactsError, enterprise_facts, enterprise_projects, import_facts, parse_facts_csv
from store.sites import apply_site

HEADER = "enterprise,record,kind,date,level,scope,until,first_time,amount,reference,project,pv_w,storage_power_w,storage_energy_wh\n"
GOOD = HEADER + (
    "jj-shoes,fact,miit_norm,2025-03-10,,再生资源综合利用,,,,工信部公告2025年第9号,,,,\n"
    "jj-shoes,fact,green_factory,2025-02-01,national,,,,,,,,,\n"
    "jj-shoes,fact,energy_management_cert,2025-04-01,,,,true,,,,,,\n"
    "jj-shoes,pv_project,,2025-03-01,,,,,,,roof-1,800000,100000,200000\n"
)


@pytest.fixture
def site(conn):
    apply_site(conn, load_site(DEMO_SITE))
    conn.commit()
    return "jj-shoes"


def test_import_and_query(conn, site):
    res = import_facts(conn, parse_facts_csv(GOOD))
    assert (res.facts, res.projects) == (3, 1)
    facts = enterprise_facts(conn, site)
    assert [f.kind for f in facts] == ["green_factory", "miit_norm", "energy_management_cert"]
    assert facts[1].scope == "再生资源综合利用" and facts[1].reference == "工信部公告2025年第9号"
    assert facts[2].first_time is True
    [p] = enterprise_projects(conn, site)
    assert (p.id, p.pv_w, p.commissioned) == ("roof-1", 800_000, date(2025, 3, 1))
    assert (p.storage.power_w, p.storage.energy_wh, p.storage.commissioned) == (100_000, 200_000, date(2025, 3, 1))


def test_reimport_updates_not_duplicates(conn, site):
    import_facts(conn, parse_facts_csv(GOOD))
    import_facts(conn, parse_facts_csv(GOOD.replace("800000", "900000")))
    assert len(enterprise_facts(conn, site)) == 3
    assert enterprise_projects(conn, site)[0].pv_w == 900_000


def test_errors_name_line_and_field():
    bad = HEADER + (
        "jj-shoes,fact,green_factry,2025-02-01,national,,,,,,,,,\n"  # line 2: unknown kind
        "jj-shoes,fact,green_factory,2025-13-01,national,,,,,,,,,\n"  # line 3: bad date
        "jj-shoes,pv_project,,2025-03-01,,,,,,,roof-1,0.8MW,,\n"  # line 4: pv_w not a number
        "jj-shoes,pv_project,,2025-03-01,,,,,,,roof-2,800000,100000,\n"  # line 5: storage energy missing
        "jj-shoes,fact,energy_management_cert,2025-04-01,,,,maybe,,,,,,\n"  # line 6: not a flag
    )
    with pytest.raises(FactsError) as e:
        parse_facts_csv(bad)
    msg = str(e.value)
    assert "facts.csv line 2: kind: unknown fact kind 'green_factry'" in msg
    assert "facts.csv line 3: date: '2025-13-01' is not a date" in msg
    assert "facts.csv line 4: pv_w: '0.8MW' is not a whole number" in msg
    assert "facts.csv line 5: storage_energy_wh: give both" in msg
    assert "facts.csv line 6: first_time: 'maybe' is not true/false" in msg


def test_unknown_column():
    with pytest.raises(FactsError, match="line 1: unknown column.*colour"):
        parse_facts_csv("enterprise,record,colour\n")


def test_all_or_nothing_unknown_enterprise(conn, site):
    rows = parse_facts_csv(GOOD + "nobody,fact,green_factory,2025-02-01,provincial,,,,,,,,,\n")
    with pytest.raises(FactsError, match="line 6: enterprise: no enterprise 'nobody'"):
        import_facts(conn, rows)
    assert enterprise_facts(conn, site) == ()
    assert enterprise_projects(conn, site) == ()


def test_amount_kept_exact(conn, site):
    text = HEADER + "jj-shoes,fact,energy_saving_fund,2024-05-01,,,,,123456.78,,,,,\n"
    import_facts(conn, parse_facts_csv(text))
    assert enterprise_facts(conn, site)[0].amount == Decimal("123456.78")
