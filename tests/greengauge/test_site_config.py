from pathlib import Path

import pytest

from greengauge.demo import DEMO_SITE
from model.site import load_site
from model.yamlfile import ConfigError

GOOD = Path(str(DEMO_SITE)).read_text(encoding="utf-8")


def write(tmp_path, text):
    p = tmp_path / "site.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def line_of(text, needle):
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_bundled_site_is_valid():
    site = load_site(Path(str(DEMO_SITE)))
    assert site.enterprise.timezone == "Asia/Shanghai"
    assert {p.role for _, _, p in site.points() if p.role} == {
        "grid_import", "grid_export", "pv_generation", "storage_charge", "storage_discharge", "subproject"}


@pytest.mark.parametrize("old, new, needle, message", [
    ("profile: generic-bess-meter", "profile: sunspec-inv", "profile: sunspec-inv",
     "devices[2].profile: profile 'sunspec-inv' does not exist (known: "),
    ("timezone: Asia/Shanghai", "timezone: Mars/Olympus", "timezone: Mars", "enterprise.timezone: unknown time zone"),
    ("poll_interval_s: 60\n    points:\n      - {quantity: energy_export, role: pv_generation",
     "poll_interval_s: -5\n    points:\n      - {quantity: energy_export, role: pv_generation",
     "poll_interval_s: -5", "devices[1].poll_interval_s: Input should be greater than 0"),
    ("{quantity: active_power}\n      - {quantity: state_of_charge}",
     "{quantity: active_power, role: grid_import}\n      - {quantity: state_of_charge}",
     "{quantity: active_power, role: grid_import}", "needs an electrical energy counter"),
    # grid power is + on import, PV power + on generation: one meter cannot be both
    ("{quantity: energy_export, role: grid_export,", "{quantity: energy_export, role: pv_generation,",
     "- name: grid", "roles grid_import on energy_import, pv_generation on energy_export give this device's "
     "power opposite signs"),
])
def test_errors_name_file_line_and_field(tmp_path, old, new, needle, message):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    with pytest.raises(ConfigError) as exc:
        load_site(write(tmp_path, text))
    assert f"site.yaml line {line_of(text, needle)}: " in str(exc.value)
    assert message in str(exc.value)


def test_unknown_field_and_bad_yaml(tmp_path):
    text = GOOD.replace("  industry: footwear", "  industry: footwear\n  colour: green")
    with pytest.raises(ConfigError, match=rf"site.yaml line {line_of(text, 'colour')}: enterprise.colour: Extra inputs"):
        load_site(write(tmp_path, text))
    with pytest.raises(ConfigError, match="site.yaml line 3: not valid YAML"):
        load_site(write(tmp_path, "park:\n  code: [a\n  name: x\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_site(tmp_path / "missing.yaml")


def test_same_endpoint_twice_is_refused(tmp_path):
    text = GOOD.replace("    port: 15021\n    unit_id: 2", "    port: 15021\n    unit_id: 1")
    with pytest.raises(ConfigError, match="unit 1 is already used by another device"):
        load_site(write(tmp_path, text))
