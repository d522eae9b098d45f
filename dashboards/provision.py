"""Grafana provisioning from the database's tenants: one organization per park and one for the
bureau, each with a datasource logging in as that park's (the bureau's) reader role, never the
owner (OSS Grafana has no per-datasource permissions, so the organization is the boundary and the
database role is the scope).

Files written under ``out`` (Grafana's provisioning layout, ``/etc/grafana/provisioning``)::

    organizations.yaml                     the organizations, their ids and reader roles (for push)
    datasources/greengauge-<org>.yaml      the reader datasource of each organization
    dashboards/greengauge-<org>.yaml       dashboard providers (park: Plant + Park; bureau: all three)
    alerting/greengauge-<org>.yaml         alert rules, contact point and notification policy

Grafana's file provisioning cannot create organizations: ``greengauge dashboards push`` creates
them by name through the HTTP API (the bureau is the Main Org., id 1; parks follow in park id
order), and refuses to go on if Grafana gave an organization another id than these files carry.

Passwords never enter these files: each datasource reads its reader's password from a file,
``$__file{/etc/grafana/provisioning/secrets/<org>}`` (Grafana expands ``$__file{}`` in
provisioning), i.e. ``secrets/<org>`` beside these files, mode 0600 and git-ignored. A reader
created here (``create_missing``) has its password written there; for an existing reader, put the
password ``greengauge tenants add-reader`` showed once into that file (or create the reader with
``tenants add-reader --park P --secret-file <provisioning>/secrets/P``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from ruamel.yaml import YAML

from dashboards import alerts
from dashboards.query import DATASOURCE_TYPE, DATASOURCE_UID

DASHBOARDS_PATH = "/var/lib/grafana/dashboards/greengauge"  # where docker-compose mounts deploy/grafana/dashboards
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"  # where docker-compose mounts the provisioning directory
FOLDER = "GreenGauge"


class ProvisionError(ValueError):
    pass


@dataclass
class Org:
    key: str  # park code, or "bureau"
    name: str
    org_id: int
    reader: str  # the login role of the datasource
    dashboard_sets: tuple[str, ...]  # sub-directories of the dashboards (build.FOLDERS values)
    password: str | None = field(default=None, repr=False)  # only for a reader created now

    @property
    def password_file(self) -> str:
        """The reader's password file, relative to the provisioning directory."""
        return "secrets/" + re.sub(r"[^a-z0-9_.-]", "_", self.key.lower())


@dataclass(frozen=True)
class ContactPoint:
    """``email:ADDRESS[,ADDRESS]`` or ``webhook:URL``; the default mails ``$GREENGAUGE_ALERT_EMAIL``."""

    kind: str
    target: str

    @classmethod
    def parse(cls, text: str) -> "ContactPoint":
        kind, _, target = text.partition(":")
        if kind not in ("email", "webhook") or not target:
            raise ProvisionError(f"contact point {text!r}: give email:ADDRESS or webhook:URL")
        return cls(kind, target)

    def receiver(self, uid: str) -> dict:
        settings = {"addresses": self.target} if self.kind == "email" else {"url": self.target, "httpMethod": "POST"}
        return {"uid": uid, "type": self.kind, "settings": settings, "disableResolveMessage": False}


DEFAULT_CONTACT = ContactPoint("email", "$GREENGAUGE_ALERT_EMAIL")


def organizations(conn: psycopg.Connection, *, create_missing: bool = False) -> list[Org]:
    """The organizations the database's tenants call for: the bureau (id 1) and each park that has
    a park reader (ids 2, 3, … in park id order). A park without a reader is an error naming the
    command that makes one, unless ``create_missing``, which makes it (and a bureau reader)."""
    from store.tenancy import add_reader, list_readers

    readers = [r for r in list_readers(conn) if not r.can_write]
    parks = conn.execute("SELECT code, name FROM park ORDER BY park_id").fetchall()
    by_park = {}
    for r in readers:
        if r.kind == "park":
            by_park.setdefault(r.scope_code, r)
    bureau = next((r for r in readers if r.kind == "bureau"), None)
    missing = [code for code, _ in parks if code not in by_park]
    if (missing or bureau is None) and not create_missing:
        what = [f"park {c}: greengauge tenants add-reader --park {c} --secret-file <provisioning>/secrets/{c}"
                for c in missing]
        what += ["the bureau: greengauge tenants add-reader --bureau --secret-file <provisioning>/secrets/bureau"] \
            if bureau is None else []
        raise ProvisionError("no reader role for " + "; ".join(what)
                             + " (or run `dashboards provision --create-readers`)")
    if bureau is None:
        bureau = add_reader(conn, bureau=True)
    for code in missing:
        by_park[code] = add_reader(conn, park=code)
    conn.commit()
    orgs = [Org("bureau", "GreenGauge 主管部门 Bureau", 1, bureau.name, ("park", "bureau"), bureau.password)]
    for i, (code, name) in enumerate(parks):
        r = by_park[code]
        orgs.append(Org(code, f"{name} ({code})", i + 2, r.name, ("park",), r.password))
    return orgs


def _yaml() -> YAML:
    y = YAML()
    y.default_flow_style = False
    y.allow_unicode = True
    y.width = 4096
    return y


def datasource_file(org: Org, db_host: str, db_name: str) -> dict:
    return {"apiVersion": 1, "datasources": [{
        "name": "GreenGauge", "uid": DATASOURCE_UID, "orgId": org.org_id, "type": DATASOURCE_TYPE,
        "access": "proxy", "url": db_host, "user": org.reader, "isDefault": True, "editable": False,
        "jsonData": {"database": db_name, "sslmode": "disable", "postgresVersion": 1500, "timescaledb": False,
                     "maxOpenConns": 10, "timeInterval": "1m"},
        "secureJsonData": {"password": "$__file{" + f"{GRAFANA_PROVISIONING}/{org.password_file}" + "}"},
    }]}


def dashboards_file(org: Org, path: str = DASHBOARDS_PATH) -> dict:
    return {"apiVersion": 1, "providers": [{
        "name": f"greengauge-{org.key}-{s}", "orgId": org.org_id, "folder": FOLDER, "folderUid": alerts.FOLDER_UID,
        "type": "file", "disableDeletion": True, "allowUiUpdates": False, "updateIntervalSeconds": 60,
        "options": {"path": f"{path}/{s}", "foldersFromFilesStructure": False}} for s in org.dashboard_sets]}


def alerting_file(org: Org, contact: ContactPoint, gap_minutes: int) -> dict:
    name = "greengauge"
    return {
        "apiVersion": 1,
        "groups": [alerts.file_groups(org.org_id, org.key, gap_minutes=gap_minutes)],
        "contactPoints": [{"orgId": org.org_id, "name": name,
                           "receivers": [contact.receiver(f"gg-contact-{org.org_id}")]}],
        "policies": [{"orgId": org.org_id, "receiver": name, "group_by": ["grafana_folder", "alertname", "enterprise"]}],
    }


def manifest(orgs: list[Org]) -> dict:
    return {"organizations": [{"id": o.org_id, "key": o.key, "name": o.name, "reader": o.reader,
                               "password_file": o.password_file, "dashboards": list(o.dashboard_sets)} for o in orgs]}


def write(out: Path, orgs: list[Org], *, db_host: str = "db:5432", db_name: str = "greengauge",
          contact: ContactPoint = DEFAULT_CONTACT, gap_minutes: int = alerts.DEFAULT_GAP_MINUTES) -> list[Path]:
    """Write every provisioning file for ``orgs`` under ``out``; return the paths written."""
    y = _yaml()
    files: dict[Path, dict] = {out / "organizations.yaml": manifest(orgs)}
    for o in orgs:
        files[out / "datasources" / f"greengauge-{o.key}.yaml"] = datasource_file(o, db_host, db_name)
        files[out / "dashboards" / f"greengauge-{o.key}.yaml"] = dashboards_file(o)
        files[out / "alerting" / f"greengauge-{o.key}.yaml"] = alerting_file(o, contact, gap_minutes)
    written = []
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".yaml.new")
        with tmp.open("w", encoding="utf-8") as f:
            f.write("# generated by `greengauge dashboards provision`; do not edit\n")
            y.dump(data, f)
        tmp.replace(path)
        written.append(path)
    for o in orgs:
        if o.password:  # a reader created now: its password, once, readable by the owner only
            path = out / o.password_file
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(o.password + "\n")
            written.append(path)
    return written


def missing_passwords(out: Path, orgs: list[Org]) -> list[Path]:
    """The password files Grafana will need that are not there yet."""
    return [out / o.password_file for o in orgs if not (out / o.password_file).is_file()]


def load(out: Path) -> dict:
    """Every provisioning file under ``out`` parsed, by path relative to ``out``."""
    y = YAML(typ="safe")
    return {str(p.relative_to(out)): y.load(p.read_text(encoding="utf-8")) for p in sorted(out.rglob("*.yaml"))}
