"""Device health: recorded per poll, written to device_health, shown by ``greengauge status``."""

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from typer.testing import CliRunner

from collectors.clock import WallClock
from collectors.health import HealthRecorder
from collectors.run import collect
from greengauge.cli import app
from model.readings import Quality, Reading
from model.site import SiteConfig
from store.health import device_ids
from store.sites import apply_site
from tests.conftest import free_port

T0 = datetime(2025, 6, 21, tzinfo=timezone.utc)


def site_for(port):
    return SiteConfig.model_validate({
        "enterprise": {"code": "acme", "name": "Acme"}, "site": {"code": "main", "name": "Main"},
        "devices": [{"name": "grid", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port,
                     "poll_interval_s": 0.2, "timeout_s": 0.5, "points": [{"quantity": "energy_import"}]}],
    })


def test_health_rows_follow_the_device_and_wait_in_memory_while_the_database_is_away(db_url, conn):
    apply_site(conn, site_for(1502))
    ids = device_ids(conn, "acme", "main")
    url = {"u": f"postgresql://127.0.0.1:{free_port()}/x"}
    h = HealthRecorder(lambda: psycopg.connect(url["u"], connect_timeout=2), ids)
    h.success("grid", 0.012, T0)
    h.failure("grid", "ConnectionError: cannot connect", T0 + timedelta(seconds=1))
    h.failure("grid", "ConnectionError: cannot connect", T0 + timedelta(seconds=2))
    h.finding("device_error", "grid", "1 of 9 refused", device="grid", when=T0)
    h.finding("device_error", "grid", "2 of 9 refused", device="grid", when=T0 + timedelta(seconds=2), count=2)
    asyncio.run(h.flush())  # the database is away: kept
    url["u"] = db_url
    asyncio.run(h.flush())
    row = conn.execute("SELECT status, since, last_success, consecutive_failures, latency_ms, last_error "
                       "FROM device_health").fetchone()
    assert row == ("away", T0 + timedelta(seconds=1), T0, 2, 12.0, "ConnectionError: cannot connect")
    assert conn.execute("SELECT kind, source, count, first_seen, last_seen, detail FROM collector_finding").fetchone() \
        == ("device_error", "grid", 3, T0, T0 + timedelta(seconds=2), "2 of 9 refused")
    h.success("grid", 0.005, T0 + timedelta(seconds=3))
    h.finding("device_error", "grid", "again", device="grid", when=T0 + timedelta(seconds=3))
    asyncio.run(h.flush())
    conn.commit()
    assert conn.execute("SELECT status, since, consecutive_failures, last_error FROM device_health").fetchone() == (
        "ok", T0 + timedelta(seconds=3), 0, None)
    assert conn.execute("SELECT count FROM collector_finding").fetchone() == (4,)


def test_health_keeps_its_connection_and_replaces_one_the_server_ended_at_once(db_url, conn):
    apply_site(conn, site_for(1502))
    ids = device_ids(conn, "acme", "main")
    opened = []

    def connect():
        opened.append(psycopg.connect(db_url))
        return opened[-1]

    h = HealthRecorder(connect, ids)
    for k in range(2):
        h.success("grid", 0.01, T0 + timedelta(seconds=k))
        asyncio.run(h.flush())
    assert len(opened) == 1  # one connection for every write, not one each
    conn.execute("SELECT pg_terminate_backend(%s)", (opened[0].info.backend_pid,))
    conn.commit()
    h.success("grid", 0.02, T0 + timedelta(seconds=2))
    asyncio.run(h.flush())  # the server ended it: written at once on a new one, not an interval later
    assert len(opened) == 2
    conn.commit()
    assert conn.execute("SELECT last_success, latency_ms FROM device_health").fetchone() == (
        T0 + timedelta(seconds=2), 20.0)
    h.close()
    assert opened[1].closed


def test_a_device_that_goes_away_is_logged_once_and_once_when_back_and_status_shows_it(db_url, conn, caplog,
                                                                                        monkeypatch):
    port = free_port()
    site = site_for(port)
    ids = apply_site(conn, site)

    async def main():
        def server():
            return ModbusTcpServer([SimDevice(id=1, simdata=[SimData(0, count=18, values=0,
                                                                     datatype=DataType.REGISTERS)])],
                                   address=("127.0.0.1", port))
        s = server()
        await s.serve_forever(background=True)
        stop = asyncio.Event()
        task = asyncio.create_task(collect(site, ids, db_url, WallClock(), stop, flush_interval_s=0.1,
                                           health_interval_s=0.1))
        await asyncio.sleep(0.8)
        await s.shutdown()  # the device goes away for a while
        await asyncio.sleep(1.5)
        conn.commit()
        away = conn.execute("SELECT status, consecutive_failures FROM device_health").fetchone()
        s = server()
        await s.serve_forever(background=True)  # and returns
        await asyncio.sleep(1.0)
        conn.commit()
        back = conn.execute("SELECT status, consecutive_failures FROM device_health").fetchone()
        stop.set()
        await task
        await s.shutdown()
        return away, back

    with caplog.at_level(logging.INFO, logger="collectors.modbus"):
        away, back_row = asyncio.run(main())
    assert back_row == ("ok", 0)
    assert away[0] == "away" and away[1] >= 2
    gone = [r for r in caplog.records if r.levelno == logging.ERROR and "is away" in r.getMessage()]
    back = [r for r in caplog.records if r.levelno == logging.INFO and "is back" in r.getMessage()]
    assert (len(gone), len(back)) == (1, 1)
    conn.commit()  # the collector stopped: not being collected, whatever it last saw
    assert conn.execute("SELECT status, consecutive_failures, stopped_at IS NOT NULL FROM device_health"
                        ).fetchone() == ("ok", 0, True)

    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", db_url)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "acme/main/grid" in result.output and "not collected" in result.output
    assert "1 devices, 0 away, 1 not collected" in result.output


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.one_of(st.tuples(st.just("poll"), st.integers(0, 3)), st.just(("fail", 0)),
                                 st.just(("stop", 0)), st.just(("flush", 0))), max_size=30))
def test_a_polls_hook_records_what_success_failure_and_finding_record(events):
    # the hook's shortcut for an ok poll of an ok device (the row updated in place) must leave every
    # row, finding and change mark as the plain calls do, whatever came before: polls with 0-3 of 3
    # values BAD, failures, a stop, rows taken for writing
    class Device:
        device = SimpleNamespace(name="grid")
        on_poll = on_failure = None

    class Clock:
        def now(self):
            return when

    hooked, plain = (HealthRecorder(lambda: None, {"grid": 7}) for _ in range(2))
    dev = Device()
    hooked.watch_modbus(dev)
    for k, (kind, bad) in enumerate(events):
        when = T0 + timedelta(seconds=k)
        if kind == "poll":
            readings = [Reading(1, when, None, Quality.BAD)] * bad + [Reading(1, when, 1.0)] * (3 - bad)
            dev.on_poll(readings, 0.01 * k, when, bad)
            if bad == 3:
                plain.failure("grid", "device answered but refused or returned no number for all 3 values", when)
            else:
                plain.success("grid", 0.01 * k, when)
            if bad:
                plain.finding("device_error", "grid", data={"refused": bad, "values": 3}, device="grid", when=when,
                              count=bad)
        elif kind == "fail":
            dev.on_failure(ConnectionError("gone"), Clock())
            plain.failure("grid", "ConnectionError: gone", when)
        elif kind == "stop":
            hooked.stopped(when)
            plain.stopped(when)
        else:
            assert hooked._take() == plain._take()
        assert vars(hooked.status("grid") or SimpleNamespace()) == vars(plain.status("grid") or SimpleNamespace())
    assert hooked._take() == plain._take()
