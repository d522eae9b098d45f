"""Send the provisioning to a running Grafana through its HTTP API, with grafana-client.

For each organization of ``organizations.yaml`` (written by ``dashboards provision``): create it by
name when missing (the bureau is the Main Org., id 1) and check its id matches the files; then,
with ``X-Grafana-Org-Id`` set to it, upsert the reader datasource, the GreenGauge folder, the
dashboards of its sets, the alert rules, the contact point and the notification policy.

The credential file holds ``user:password`` of a Grafana server admin (basic auth: the only kind
that can create organizations and act in each), or an API token for a single-organization Grafana.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from dashboards import alerts
from dashboards.provision import ProvisionError, load


@dataclass
class PushResult:
    organizations: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # what did not exist before
    updated: list[str] = field(default_factory=list)


def read_credential(path: Path, user: str | None = None) -> str | tuple[str, str]:
    """``user:password`` or a token from ``path``; with ``user``, the file holds that user's password
    (e.g. docker-compose's secrets/grafana_admin_password)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ProvisionError(f"{path}: cannot read the Grafana credential ({exc.strerror})") from None
    if not text:
        raise ProvisionError(f"{path}: empty; put user:password of a Grafana admin or an API token in it")
    if user:
        return user, text
    if ":" in text and not text.startswith("glsa_"):
        user, _, password = text.partition(":")
        return user, password
    return text


def _api(url: str, credential, org_id: int | None = None) -> GrafanaApi:
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ProvisionError(f"--url {url!r}: give the Grafana base URL, e.g. http://grafana:3000")
    return GrafanaApi(credential, host=u.hostname, port=u.port, protocol=u.scheme, url_path_prefix=u.path.lstrip("/"),
                      organization_id=org_id, timeout=30)


def _missing(exc: GrafanaClientError) -> bool:
    return exc.status_code == 404


def push(url: str, credential, provisioning: Path, dashboards_dir: Path) -> PushResult:
    files = load(provisioning)
    if "organizations.yaml" not in files:
        raise ProvisionError(f"{provisioning}: no organizations.yaml; run `greengauge dashboards provision` first")
    res = PushResult()
    admin = _api(url, credential)
    existing = {o["name"]: o["id"] for o in admin.organizations.list_organization()}
    for org in files["organizations.yaml"]["organizations"]:
        oid, name, key = org["id"], org["name"], org["key"]
        if oid == 1:
            if existing.get(name) != 1:
                admin.organizations.update_organization(1, {"name": name})
                res.updated.append(f"organization 1 named {name}")
        elif name not in existing:
            got = admin.organization.create_organization({"name": name})["orgId"]
            res.created.append(f"organization {name}")
            if got != oid:
                raise ProvisionError(f"Grafana created organization {name!r} with id {got}, the files say {oid}: "
                                     "the organizations must be created in the order of organizations.yaml on a "
                                     "fresh Grafana (or edit the orgId in the provisioning files to match)")
        elif existing[name] != oid:
            raise ProvisionError(f"organization {name!r} has id {existing[name]} in Grafana, {oid} in the files")
        res.organizations.append(name)
        api = _api(url, credential, oid)
        _datasource(api, files[f"datasources/greengauge-{key}.yaml"]["datasources"][0], org, provisioning, res)
        _folder(api, res)
        for s in org["dashboards"]:
            for path in sorted((dashboards_dir / s).glob("*.json")):
                model = json.loads(path.read_text(encoding="utf-8"))
                api.dashboard.update_dashboard({"dashboard": model, "folderUid": alerts.FOLDER_UID, "overwrite": True,
                                                "message": "greengauge dashboards push"})
                res.updated.append(f"{name}: dashboard {model['uid']}")
        _alerting(api, files[f"alerting/greengauge-{key}.yaml"], oid, res, name)
    return res


def _datasource(api: GrafanaApi, ds: dict, org: dict, provisioning: Path, res: PushResult) -> None:
    pw = provisioning / org["password_file"]
    try:
        password = pw.read_text(encoding="utf-8").strip()
    except OSError:
        raise ProvisionError(f"organization {org['name']}: no password file {pw} for reader {org['reader']} (put the "
                             "password `tenants add-reader` showed into it, or provision with --create-readers)") from None
    body = {k: v for k, v in ds.items() if k not in ("orgId", "editable")}
    body["secureJsonData"] = {"password": password}  # the API takes the value, not Grafana's $__file{}
    try:
        api.datasource.get_datasource_by_uid(ds["uid"])
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        api.datasource.create_datasource(body)
        res.created.append(f"{org['name']}: datasource {ds['uid']} as {ds['user']}")
    else:
        api.datasource.update_datasource_by_uid(ds["uid"], body)
        res.updated.append(f"{org['name']}: datasource {ds['uid']} as {ds['user']}")


def _folder(api: GrafanaApi, res: PushResult) -> None:
    try:
        api.folder.get_folder(alerts.FOLDER_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        api.folder.create_folder(alerts.FOLDER_TITLE, uid=alerts.FOLDER_UID)
        res.created.append("folder GreenGauge")


def _alerting(api: GrafanaApi, f: dict, oid: int, res: PushResult, name: str) -> None:
    group = f["groups"][0]
    for rule in group["rules"]:
        body = {**rule, "folderUID": alerts.FOLDER_UID, "ruleGroup": group["name"], "orgID": oid}
        try:
            api.alertingprovisioning.get_alertrule(rule["uid"])
        except GrafanaClientError as exc:
            if not _missing(exc):
                raise
            api.alertingprovisioning.create_alertrule(body)
            res.created.append(f"{name}: alert rule {rule['uid']}")
        else:
            api.alertingprovisioning.update_alertrule(rule["uid"], body)
            res.updated.append(f"{name}: alert rule {rule['uid']}")
    for cp in f["contactPoints"]:
        for rc in cp["receivers"]:
            body = {"uid": rc["uid"], "name": cp["name"], "type": rc["type"], "settings": rc["settings"],
                    "disableResolveMessage": rc.get("disableResolveMessage", False)}
            known = [c for c in api.alertingprovisioning.get_contactpoints(name=cp["name"]) if c.get("uid") == rc["uid"]]
            if known:
                api.alertingprovisioning.update_contactpoint(rc["uid"], body)
            else:
                api.alertingprovisioning.create_contactpoint(body)
                res.created.append(f"{name}: contact point {cp['name']}")
    pol = f["policies"][0]
    api.alertingprovisioning.set_notification_policy_tree({"receiver": pol["receiver"], "group_by": pol["group_by"]})
    # the rule group's evaluation interval
    api.alertingprovisioning.update_rule_group(alerts.FOLDER_UID, group["name"], {
        "title": group["name"], "interval": _seconds(group["interval"]),
        "rules": [{**r, "folderUID": alerts.FOLDER_UID, "ruleGroup": group["name"], "orgID": oid}
                  for r in group["rules"]]})


def _seconds(text: str) -> int:
    n, unit = int(text[:-1]), text[-1]
    return n * {"s": 1, "m": 60, "h": 3600}[unit]
