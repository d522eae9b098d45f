"""Connection failures are never silent (issue 10 §1): TLS, refused, a client_id used twice, site-file checks.

Private mosquittos on free ports (TLS, a broker that is not there yet), the shared one for the
client_id takeover; the real PostgreSQL for health and findings; ``greengauge status`` and
``greengauge site check`` through the CLI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collectors.clock import WallClock
from collectors.run import collect
from greengauge.cli import app
from model.site import SiteConfig
from store.sites import apply_site
from tests.collectors.mqtt_helpers import PrivateBroker, Publisher, unique
from tests.collectors.test_mqtt import _until, mqtt_site
from tests.conftest import free_port

needs_openssl = pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl for the broker's certificate")


def flat(text: str) -> str:
    """CLI output without white space (rich wraps long table cells)."""
    return "".join(text.split())


def health(conn) -> dict[str, tuple[str, str | None]]:
    conn.commit()
    return {n: (s, e) for n, s, e in conn.execute(
        "SELECT d.name, h.status, h.last_error FROM device_health h JOIN device d USING (device_id)")}


async def run_for(site, ids, db_url, seconds: float, during=None):
    stop = asyncio.Event()
    started = asyncio.Future()
    task = asyncio.create_task(collect(site, ids, db_url, WallClock(), stop, flush_interval_s=0.1,
                                       health_interval_s=0.2, on_start=started.set_result))
    parts = await started
    try:
        if during is not None:
            await during(parts)
        await asyncio.sleep(seconds)
    finally:
        stop.set()
        await task
    return parts


def _other_ca(directory: Path) -> str:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out",
                    "other-ca.crt", "-days", "2", "-subj", "/CN=not-the-brokers-ca"], cwd=directory, check=True,
                   capture_output=True)
    return str(directory / "other-ca.crt")


@needs_openssl
@pytest.mark.parametrize("case", ["wrong CA", "host name mismatch"])
def test_a_tls_failure_is_logged_once_with_its_reason_and_shown_in_status(db_url, conn, caplog, monkeypatch,
                                                                         tmp_path, case):
    port = free_port()
    broker = PrivateBroker(port)
    try:
        ca = broker.make_tls()
        broker.conf.write_text(broker.conf.read_text().replace(
            "\n\nallow_anonymous", f"\ncafile {ca}\ncertfile {broker.dir}/server.crt\n"
            f"keyfile {broker.dir}/server.key\nallow_anonymous"))
        broker.start()
        data = mqtt_site(unique(), port=port).model_dump(mode="json", exclude_none=True)
        if case == "wrong CA":
            data["mqtt"]["tls"] = {"ca_certs": _other_ca(tmp_path)}
        else:  # the certificate names 127.0.0.1, the site file 'localhost'
            data["mqtt"].update(host="localhost", tls={"ca_certs": ca})
        site = SiteConfig.model_validate(data)
        ids = apply_site(conn, site)
        monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
        seen = {}

        async def during(parts):
            await asyncio.sleep(3.5)  # reconnect every 1-2 s: several attempts
            seen["rows"] = health(conn)  # what an operator sees while the collector runs
            seen["status"] = await asyncio.to_thread(CliRunner().invoke, app, ["status"], env={"COLUMNS": "500"})

        with caplog.at_level(logging.INFO, logger="collectors.mqtt"):
            parts = asyncio.run(run_for(site, ids, db_url, 0.1, during))
    finally:
        broker.cleanup()
    assert parts.source.connect_failures >= 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # once, not at every retry
    reason = "certificate in certificate chain" if case == "wrong CA" else "Hostname mismatch"
    assert "cannot connect to the MQTT broker" in errors[0] and "TLS" in errors[0] and reason in errors[0]
    rows = seen["rows"]
    assert {n for n, (s, _) in rows.items() if s == "away"} == {"gw1", "pv1"}
    assert all("TLS" in e and reason in e for _, e in rows.values())
    result = seen["status"]
    assert result.exit_code == 0, result.output
    assert "2devices,2away" in flat(result.output)
    assert flat("TLS: the broker's certificate was not accepted") in flat(result.output)


def test_a_broker_not_there_yet_is_one_error_then_one_info_when_it_comes(db_url, conn, caplog):
    port = free_port()
    broker = PrivateBroker(port)
    prefix = unique()
    site = mqtt_site(prefix, port=port)
    ids = apply_site(conn, site)
    seen = {}

    async def during(parts):
        await asyncio.sleep(2.5)  # refused, twice or more
        seen["away"] = health(conn)
        await asyncio.to_thread(broker.start)
        assert await parts.source.wait_connected(10)
        await asyncio.sleep(0.3)
        pub = await asyncio.to_thread(Publisher, "127.0.0.1", port)
        await asyncio.to_thread(pub.publish, f"{prefix}/pv1/a/power", b"1")
        pub.close()
        assert await _until(lambda: health(conn).get("pv1", ("",))[0] == "ok")
        seen["back"] = health(conn)

    try:
        with caplog.at_level(logging.INFO, logger="collectors.mqtt"):
            asyncio.run(run_for(site, ids, db_url, 0.2, during))
    finally:
        broker.cleanup()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    back = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "is back" in r.getMessage()]
    assert len(errors) == 1 and "Connection refused" in errors[0], errors
    assert len(back) == 1
    assert seen["away"]["gw1"][0] == "away" and "Connection refused" in seen["away"]["gw1"][1]
    assert seen["back"]["pv1"] == ("ok", None)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_two_collectors_with_one_client_id_say_so_and_back_off_instead_of_fighting(db_url, conn, caplog,
                                                                                   monkeypatch, protocol):
    """The broker knocks the older connection off (MQTT 5 brokers may say 'Session taken over', 0x8E;
    mosquitto 2.0 just closes it): after three such cuts of a session just accepted, the collector
    says so (ERROR, a client_id_conflict finding) and waits takeover_backoff_s, doubled at each
    further takeover, instead of taking the session back once a second."""
    client_id = f"gg-twice-{uuid.uuid4().hex[:8]}"
    data = mqtt_site(unique(), client_id=client_id, protocol=protocol).model_dump(mode="json", exclude_none=True)
    data["mqtt"]["takeover_backoff_s"] = 2
    site = SiteConfig.model_validate(data)
    ids = apply_site(conn, site)

    async def main():
        first = asyncio.create_task(run_for(site, ids, db_url, 15.0))
        await asyncio.sleep(1.0)
        second = asyncio.create_task(run_for(site, ids, db_url, 14.0))  # the same client_id
        return await first, await second

    with caplog.at_level(logging.INFO, logger="collectors.mqtt"):
        a, b = asyncio.run(main())
    mine = [r for r in caplog.records if r.name == "collectors.mqtt" and "taken over" in r.getMessage()]
    taken = [r.getMessage() for r in mine]
    assert taken and all(r.levelno == logging.ERROR for r in mine)
    assert "two collectors share one client_id" in taken[0]
    assert "0x8E" in taken[0] or "cut 3 times within 60 s, each within 10 s of the broker accepting it" in taken[0]
    # backing off, doubling: 2 s, then 4 s (not once a second for ever)
    backoffs = {int(m) for t in taken for m in re.findall(r"backing off (\d+) s", t)}
    assert {2, 4} <= backoffs, taken
    assert a.source.takeovers + b.source.takeovers == len(taken)
    conn.commit()
    finding = conn.execute("SELECT source, count, detail FROM collector_finding WHERE kind = 'client_id_conflict'"
                           ).fetchone()
    assert finding[0] == client_id and finding[1] == len(taken) and "share one client_id" in finding[2]
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    result = CliRunner().invoke(app, ["status", "--enterprise", "acme"], env={"COLUMNS": "500"})
    assert result.exit_code == 0 and "client_id_conflict" in result.output  # tied to the site's devices


# -- site check ----------------------------------------------------------------------------------

SITE = """\
enterprise: {code: acme, name: Acme}
site: {code: main, name: Main}
mqtt:
  host: 127.0.0.1
  username: USER
  password_env: GG_TEST_UNSET_PASSWORD_ENV
  tls:
    ca_certs: CA
  devices:
    - name: gw1
      points: [{quantity: active_power}]
  subscriptions:
    - {topic: x/gw1, device: gw1, format: number, quantity: active_power}
"""


SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


@pytest.mark.parametrize("edit, message", [
    ({}, "site.yaml line 6: mqtt.password_env: environment variable GG_TEST_UNSET_PASSWORD_ENV (password_env) "
         "is not set"),
    ({"  username: USER\n": ""}, "site.yaml line 5: mqtt.password_env: password_env without username"),
    ({"  username: USER\n": "", "password_env: GG_TEST_UNSET_PASSWORD_ENV": "password: s3cret"},
     "site.yaml line 5: mqtt.password: password without username"),
    ({"GG_TEST_UNSET_PASSWORD_ENV": "HOME", "ca_certs: CA": "ca_certs: /nonexistent/ca.crt"},
     "site.yaml line 8: mqtt.tls.ca_certs: CA file '/nonexistent/ca.crt' not found"),
    ({"GG_TEST_UNSET_PASSWORD_ENV": "HOME", "ca_certs: CA": "ca_certs: GARBAGE"},
     "site.yaml line 8: mqtt.tls.ca_certs: CA file"),
    ({"password_env: GG_TEST_UNSET_PASSWORD_ENV": "password_file: /nonexistent/secret"},
     "site.yaml line 6: mqtt.password_file: password file '/nonexistent/secret' not found"),
])
def test_site_check_fails_on_an_unset_password_env_a_password_without_user_and_a_missing_ca(
        tmp_path, monkeypatch, edit, message):
    monkeypatch.delenv("GG_TEST_UNSET_PASSWORD_ENV", raising=False)
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate\n")
    text = SITE
    for old, new in edit.items():
        text = text.replace(old, new)
    text = text.replace("ca_certs: CA", f"ca_certs: {SYSTEM_CA}").replace("GARBAGE", str(garbage))
    site_file = tmp_path / "site.yaml"
    site_file.write_text(text)
    result = CliRunner().invoke(app, ["site", "check", str(site_file)])
    assert result.exit_code == 2, result.output
    assert flat(message) in flat(result.output)
    if "GARBAGE" in str(edit):
        assert "holds no PEM certificate" in result.output


@needs_openssl
def test_site_check_passes_with_the_variable_set_and_a_real_ca(tmp_path, monkeypatch):
    broker = PrivateBroker(free_port())
    try:
        ca = broker.make_tls()
        monkeypatch.setenv("GG_TEST_UNSET_PASSWORD_ENV", "s3cret")
        site_file = tmp_path / "site.yaml"
        site_file.write_text(SITE.replace("ca_certs: CA", f"ca_certs: {ca}"))
        result = CliRunner().invoke(app, ["site", "check", str(site_file)])
        assert result.exit_code == 0, result.output
        assert "valid" in result.output
    finally:
        broker.cleanup()


def test_shared_subscriptions_need_mqtt_5():
    data = mqtt_site("x", protocol="3.1.1").model_dump(mode="json", exclude_none=True)
    data["mqtt"]["share_group"] = "collectors"
    with pytest.raises(ValueError, match="share_group needs protocol '5'"):
        SiteConfig.model_validate(data)
    json.dumps(data)  # (the site dict stays plain data)


@pytest.mark.skipif(not shutil.which("mosquitto_passwd"), reason="needs mosquitto_passwd for the broker's password file")
def test_the_password_may_come_from_a_file_a_docker_secret(db_url, conn, tmp_path):
    port = free_port()
    broker = PrivateBroker(port, anonymous=False)
    try:
        passwd = broker.dir / "passwd"
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "gg", "s3cret"], check=True)
        passwd.chmod(0o644)
        broker.conf.write_text(broker.conf.read_text().replace("\n\nallow_anonymous",
                                                               f"\npassword_file {passwd}\nallow_anonymous"))
        broker.start()
        secret = tmp_path / "mqtt_password"
        secret.write_text("s3cret\n")  # as a secrets file usually is: with a newline
        prefix = unique()
        data = mqtt_site(prefix, port=port).model_dump(mode="json", exclude_none=True)
        data["mqtt"].update(username="gg", password_file=str(secret))
        site = SiteConfig.model_validate(data)
        ids = apply_site(conn, site)
        pub = Publisher("127.0.0.1", port, username="gg", password="s3cret")

        async def during(parts):
            assert await parts.source.wait_connected(10)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(pub.publish, f"{prefix}/pv1/x/power", b"3")
            assert await _until(lambda: conn.execute("SELECT count(*) FROM reading").fetchone()[0] == 1
                                and not conn.commit())

        asyncio.run(run_for(site, ids, db_url, 0.1, during))
        pub.close()
        assert conn.execute("SELECT value FROM reading").fetchone() == (3000.0,)
    finally:
        broker.cleanup()
