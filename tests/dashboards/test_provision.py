"""dashboards/provision.py and push.py: organizations from the database's tenants, provisioning files
that parse and name only provisioned datasources and reader roles; push sends them with
grafana-client to a small HTTP server started here that records the requests (Grafana itself
cannot run on these machines)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from dashboards.build import OUT_DIR, build_all
from dashboards.provision import ContactPoint, ProvisionError, load, organizations, write
from dashboards.push import push, read_credential
from greengauge.cli import app


@pytest.fixture(scope="module")
def orgs(plant_db):
    with psycopg.connect(plant_db.url) as conn:
        return organizations(conn)


def test_one_organization_per_park_and_one_for_the_bureau(plant_db, orgs):
    assert [(o.org_id, o.key) for o in orgs] == [(1, "bureau"), (2, "jinjiang-eco"), (3, "xiamen-torch")]
    with psycopg.connect(plant_db.url) as conn:
        owner = conn.execute("SELECT current_user").fetchone()[0]
        readers = {r[0] for r in conn.execute("SELECT role_name FROM tenant_scope")}
    assert all(o.reader in readers and o.reader != owner for o in orgs)
    assert orgs[0].dashboard_sets == ("park", "bureau") and orgs[1].dashboard_sets == ("park",)


def test_files_parse_and_name_only_provisioned_datasources(tmp_path, orgs):
    write(tmp_path, orgs, contact=ContactPoint.parse("webhook:https://ops.example.cn/hook"), gap_minutes=45)
    files = load(tmp_path)
    assert set(files) == {"organizations.yaml"} | {f"{kind}/greengauge-{o.key}.yaml" for o in orgs
                                                   for kind in ("datasources", "dashboards", "alerting")}
    provisioned = {}
    for o in orgs:
        (ds,) = files[f"datasources/greengauge-{o.key}.yaml"]["datasources"]
        assert ds["user"] == o.reader and ds["orgId"] == o.org_id
        # no secret in the file: Grafana reads it from the password file beside it
        assert ds["secureJsonData"]["password"] == f"$__file{{/etc/grafana/provisioning/{o.password_file}}}"
        provisioned[o.org_id] = {ds["uid"]}
        providers = files[f"dashboards/greengauge-{o.key}.yaml"]["providers"]
        assert [p["options"]["path"].rsplit("/", 1)[1] for p in providers] == list(o.dashboard_sets)
        # every datasource uid a dashboard of this organization names is provisioned in it
        for s in o.dashboard_sets:
            for fname, model in build_all().items():
                if fname.startswith(s + "/"):
                    uids = {t["datasource"]["uid"] for p in model["panels"] for t in p["targets"]}
                    uids |= {v["datasource"]["uid"] for v in model["templating"]["list"] if "datasource" in v}
                    assert uids <= provisioned[o.org_id], (fname, uids)
        al = files[f"alerting/greengauge-{o.key}.yaml"]
        (group,) = al["groups"]
        assert group["orgId"] == o.org_id and len(group["rules"]) == 4
        for rule in group["rules"]:
            assert {q["datasourceUid"] for q in rule["data"]} <= provisioned[o.org_id] | {"__expr__"}
        gap = next(r for r in group["rules"] if r["uid"].startswith("gg-data-gap"))
        assert gap["data"][1]["model"]["conditions"][0]["evaluator"]["params"] == [45]
        assert al["contactPoints"][0]["receivers"][0]["settings"]["url"] == "https://ops.example.cn/hook"


def test_a_park_without_a_reader_is_named_with_the_command_to_fix_it(plant_db):
    with psycopg.connect(plant_db.url) as conn:
        conn.execute("INSERT INTO park (code, name) VALUES ('empty-park', '空园区')")
        try:
            with pytest.raises(ProvisionError, match="tenants add-reader --park empty-park"):
                organizations(conn)
        finally:
            conn.rollback()


def test_bad_contact_point():
    with pytest.raises(ProvisionError, match="email:ADDRESS or webhook:URL"):
        ContactPoint.parse("sms:123")


def test_provision_command(plant_db, tmp_path, monkeypatch):
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", plant_db.url)
    from model.settings import get_settings
    get_settings.cache_clear() if hasattr(get_settings, "cache_clear") else None
    res = CliRunner().invoke(app, ["dashboards", "provision", "--out", str(tmp_path), "--gap-minutes", "20"])
    assert res.exit_code == 0, res.output
    assert "organization 2" in res.output
    assert (tmp_path / "alerting" / "greengauge-jinjiang-eco.yaml").exists()


# -- push against a recording HTTP server ------------------------------------------------------------

class Recorder(BaseHTTPRequestHandler):
    requests: list = []
    state: dict = {}

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, code: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        path = self.path.split("?")[0]
        self.requests.append({"method": method, "path": path, "org": self.headers.get("X-Grafana-Org-Id"),
                              "auth": self.headers.get("Authorization"), "body": body})
        s = self.state
        if method == "GET" and path == "/api/orgs":
            return self._reply(200, [{"id": i, "name": n} for n, i in s["orgs"].items()])
        if method == "POST" and path == "/api/orgs":
            oid = max(s["orgs"].values()) + 1
            s["orgs"][body["name"]] = oid
            return self._reply(200, {"orgId": oid, "message": "Organization created"})
        if method == "GET" and (path.startswith("/api/datasources/uid/") or path.startswith("/api/folders/")
                                or path.startswith("/api/v1/provisioning/alert-rules/")):
            return self._reply(404, {"message": "not found"})
        if method == "GET" and path == "/api/v1/provisioning/contact-points":
            return self._reply(200, [])
        return self._reply(200, {"status": "success", "id": 1, "uid": "x"})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")


@pytest.fixture
def grafana():
    Recorder.requests = []
    Recorder.state = {"orgs": {"Main Org.": 1}}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder
    server.shutdown()
    server.server_close()


def test_push_creates_organizations_and_sends_everything_into_each(tmp_path, orgs, grafana):
    url, rec = grafana
    write(tmp_path, orgs)
    for o in orgs:
        (tmp_path / o.password_file).parent.mkdir(exist_ok=True)
        (tmp_path / o.password_file).write_text(f"pw-{o.key}\n")
    cred = tmp_path / "grafana-admin"
    cred.write_text("admin:s3cret\n")
    res = push(url, read_credential(cred), tmp_path, OUT_DIR)
    assert res.organizations == [o.name for o in orgs]
    reqs = rec.requests
    assert all(r["auth"].startswith("Basic ") for r in reqs)
    # the parks are created by name, in the order of the files, and get the ids the files carry
    assert [r["body"]["name"] for r in reqs if r["method"] == "POST" and r["path"] == "/api/orgs"] == \
        [o.name for o in orgs[1:]]
    for o in orgs:
        mine = [r for r in reqs if r["org"] == str(o.org_id)]
        (ds,) = [r["body"] for r in mine if r["path"] == "/api/datasources"]
        assert ds["user"] == o.reader and ds["secureJsonData"] == {"password": f"pw-{o.key}"}
        boards = [r["body"]["dashboard"]["uid"] for r in mine if r["path"] == "/api/dashboards/db"]
        expected = {m["uid"] for f, m in build_all().items() if f.split("/")[0] in o.dashboard_sets}
        assert set(boards) == expected
        rules = [r["body"] for r in mine if r["method"] == "POST" and r["path"] == "/api/v1/provisioning/alert-rules"]
        assert len(rules) == 4 and all(r["orgID"] == o.org_id and r["folderUID"] == "greengauge" for r in rules)
        assert any(r["path"] == "/api/v1/provisioning/policies" and r["method"] == "PUT" for r in mine)
        assert any(r["path"] == "/api/folders" and r["body"]["uid"] == "greengauge" for r in mine)


def test_push_refuses_without_the_readers_passwords(tmp_path, orgs, grafana):
    url, _ = grafana
    write(tmp_path, orgs)
    with pytest.raises(ProvisionError, match="no password file .*secrets/bureau"):
        push(url, "token", tmp_path, OUT_DIR)


def test_created_readers_passwords_are_files_only_the_owner_reads(plant_db, tmp_path):
    """--create-readers: a park without a reader gets one; its password lands in secrets/, mode 0600."""
    with psycopg.connect(plant_db.url) as conn:
        conn.execute("INSERT INTO park (code, name) VALUES ('new-park', '新园区')")
        conn.commit()
        try:
            orgs = organizations(conn, create_missing=True)
            new = next(o for o in orgs if o.key == "new-park")
            assert new.password and all(o.password is None for o in orgs if o.key != "new-park")
            write(tmp_path, orgs)
            f = tmp_path / new.password_file
            assert f.read_text().strip() == new.password and (f.stat().st_mode & 0o777) == 0o600
            assert new.password not in "".join(p.read_text() for p in tmp_path.rglob("*.yaml"))
        finally:
            from store.tenancy import revoke_reader
            revoke_reader(conn, new.reader)
            conn.execute("DELETE FROM park WHERE code = 'new-park'")
            conn.commit()


def test_credential_file_forms(tmp_path):
    f = tmp_path / "c"
    f.write_text("admin:pa:ss\n")
    assert read_credential(f) == ("admin", "pa:ss")
    f.write_text("glsa_token_x")
    assert read_credential(f) == "glsa_token_x"
    f.write_text("only-the-password\n")
    assert read_credential(f, "admin") == ("admin", "only-the-password")
    f.write_text("")
    with pytest.raises(ProvisionError, match="empty"):
        read_credential(f)


def test_push_command_reports_an_unreachable_grafana(tmp_path, orgs):
    write(tmp_path, orgs)
    cred = tmp_path / "tok"
    cred.write_text("glsa_abc")
    res = CliRunner().invoke(app, ["dashboards", "push", "--url", "http://127.0.0.1:9", "--token-file", str(cred),
                                   "--provisioning", str(tmp_path)])
    assert res.exit_code == 2 and "cannot reach Grafana" in res.output, res.output


def test_compose_gives_grafana_the_dashboards_and_no_owner_credentials():
    from ruamel.yaml import YAML

    root = Path(__file__).resolve().parents[2]
    g = YAML(typ="safe").load((root / "docker-compose.yml").read_text())["services"]["grafana"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards/greengauge:ro" in g["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in g["volumes"]
    assert not any("POSTGRES_PASSWORD" in str(v) for v in g["environment"].values())
    assert not (root / "deploy/grafana/provisioning/datasources/greengauge.yaml").exists()  # the owner datasource
