"""Helpers for tests against a real Mosquitto: unique topics, a publisher, a private broker process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

BROKER = os.environ.get("GREENGAUGE_TEST_MQTT", "127.0.0.1:1883")
HOST, PORT = BROKER.rsplit(":", 1)[0], int(BROKER.rsplit(":", 1)[1])


def unique(prefix: str = "ggtest") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


class Publisher:
    """A QoS 1 publisher with a persistent session; waits for the broker's PUBACK of each message."""

    def __init__(self, host: str = HOST, port: int = PORT, *, ca_certs: str | None = None,
                 username: str | None = None, password: str | None = None) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:10]}",
                                  clean_session=False)
        if ca_certs:
            self.client.tls_set(ca_certs=ca_certs)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 1)
        self.acked: set[int] = set()
        self.client.on_publish = lambda c, u, mid, rc, props: self.acked.add(mid)
        self.client.connect_async(host, port)
        self.client.loop_start()
        deadline = time.monotonic() + 10
        while not self.client.is_connected():
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot connect to MQTT broker {host}:{port}")
            time.sleep(0.02)

    def publish(self, topic: str, payload: str | bytes, *, wait: bool = True) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=1)
        if wait:
            info.wait_for_publish(timeout=30)
        return info

    def wait_all(self, infos: list[mqtt.MQTTMessageInfo], timeout: float = 30) -> None:
        """Wait for the broker's PUBACK of each (also of those queued while the broker was away)."""
        deadline = time.monotonic() + timeout
        while any(i.mid not in self.acked for i in infos):
            if time.monotonic() > deadline:
                missing = sum(1 for i in infos if i.mid not in self.acked)
                raise TimeoutError(f"{missing} of {len(infos)} messages not acknowledged by the broker")
            time.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class PrivateBroker:
    """A mosquitto of our own on a free port, with persistence, that a test may stop and start."""

    def __init__(self, port: int, extra_conf: str = "", anonymous: bool = True) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="gg-mosq-"))
        os.chmod(self.dir, 0o777)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {port} 127.0.0.1\n{extra_conf}\nallow_anonymous {str(anonymous).lower()}\npersistence true\n"
            f"persistence_location {self.dir}/\nmax_queued_messages 0\nautosave_interval 1\n"
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "log", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"private mosquitto did not start: {(self.dir / 'log').read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a clean stop saves the persistence file
            self.proc.wait(timeout=10)
        self.proc = None

    def make_tls(self) -> str:
        """A CA and a server certificate for 127.0.0.1 in the broker's directory; returns the CA file."""
        d = self.dir
        run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=greengauge-test-ca")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
        (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
        for f in d.iterdir():
            os.chmod(f, 0o644)
        return str(d / "ca.crt")

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
