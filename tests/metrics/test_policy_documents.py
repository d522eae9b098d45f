"""Policy documents as data: loading, validation errors that name file and field, and reach."""

from datetime import date
from pathlib import Path

import pytest

from model.yamlfile import ConfigError
from model.tables import load_document, load_documents

D2024 = "晋政规〔2024〕2号"
D2025 = "晉政規〔2025〕5號"


def docs():
    return {d.number: d for d in load_documents()}


def test_packaged_documents_load():
    d = docs()
    assert {D2024, D2025, "泉丰政办综〔2022〕2号", "福建省绿色制造梯度培育管理实施细则（暂行）"} <= set(d)
    assert all(x.digest and len(x.digest) == 64 for x in d.values())


def test_2024_2_window():
    # 2024-2 §五(三): cases from 2024-01-01; in force 2024-05-07; repealed by 2025-5 from 2025-06-15
    d = docs()[D2024]
    assert (d.first_day, d.last_day) == (date(2024, 1, 1), date(2025, 6, 14))
    assert d.reach_date(date(2024, 3, 1)).how == "retroactive"
    assert d.reach_date(date(2024, 5, 7)).how == "in_force"
    assert d.reach_date(date(2025, 6, 15)).reached is False
    assert d.reach_date(date(2023, 12, 31)).reached is False


def test_2025_5_window():
    # 2025-5 closing clause: in force 2025-06-15 to 2026-12-31, cases from 2025-01-01
    d = docs()[D2025]
    assert (d.first_day, d.last_day) == (date(2025, 1, 1), date(2026, 12, 31))
    assert d.reach_year(2025).reached and d.reach_year(2026).reached
    assert d.reach_year(2027).reached is False and d.reach_year(2024).reached is False


def test_fengze_three_years():
    d = docs()["泉丰政办综〔2022〕2号"]
    assert d.last_day == date(2025, 1, 20)


def test_amounts_from_the_texts():
    d = docs()
    r = {x.id: x for x in d[D2024].rules}
    assert str(r["recycling-electricity"].amount) == "0.1" and str(r["recycling-electricity"].cap) == "500000"
    assert {k: str(v) for k, v in r["pv-storage-subsidy"].amount.items()} == {"pv": "40000", "storage": "100000"}
    assert str(r["pv-storage-subsidy"].cap) == "300000"
    n = {x.id: x for x in d[D2025].rules}
    assert str(n["miit-norm-listing"].amount) == "200000"
    assert "pv-storage-subsidy" not in n  # absent from 2025-5


GOOD = Path(__file__).resolve().parents[2] / "metrics" / "policies" / "jinjiang_2024_2.yaml"


def test_float_money_named_with_file_and_field(tmp_path):
    text = GOOD.read_text(encoding="utf-8").replace('cap: "500000"', "cap: 500000.0")
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml line \d+: rules\[1\]\.cap: .*quoted string"):
        load_document(p)


def test_bad_condition_named(tmp_path):
    text = GOOD.read_text(encoding="utf-8").replace("pv_min_w: 500000", "pv_min_mw: 0.5")
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml line \d+: rules\[2\]: .*condition\.pv_min_w"):
        load_document(p)


def test_unknown_kind_named(tmp_path):
    text = GOOD.read_text(encoding="utf-8").replace("kind: recycling_energy", "kind: recyling")
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml line \d+: rules\[1\]\.kind"):
        load_document(p)


def test_duplicate_numbers(tmp_path):
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(GOOD.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ConfigError, match="repeat"):
        load_documents(tmp_path)
