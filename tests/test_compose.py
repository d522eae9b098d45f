"""docker-compose.yml cannot run here (no Docker engine); check what can be checked by parsing it."""

from pathlib import Path

from ruamel.yaml import YAML
from typer.main import get_command

from greengauge.cli import app

ROOT = Path(__file__).resolve().parents[1]


def load():
    return YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())


def test_services_images_are_pinned_and_match_the_design():
    services = load()["services"]
    assert {"db", "mqtt", "migrate", "collector", "grafana", "prefect-server", "flows"} <= set(services)
    assert services["prefect-server"]["image"].startswith("prefecthq/prefect:3.8.")  # the pinned prefect line
    assert services["db"]["image"].startswith("timescale/timescaledb:") and services["db"]["image"].endswith("-pg15")
    assert services["grafana"]["image"] == "grafana/grafana:11.6.0"
    for name, svc in services.items():
        image = svc.get("image", "")
        assert image and ":" in image and not image.endswith(":latest"), f"{name}: pin the image ({image!r})"


def test_greengauge_commands_exist_and_mounted_files_are_in_the_repo():
    services = load()["services"]
    cli = get_command(app)
    for name, svc in services.items():
        if svc.get("image", "").startswith("greengauge:"):
            words = svc["command"]
            group = cli
            for w in words:
                if w.startswith("/"):
                    break
                group = group.commands[w] if hasattr(group, "commands") else group
            assert group is not cli, f"{name}: {words} is not a greengauge command"
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./") and src not in OPERATOR_FILES:
                assert (ROOT / src).exists(), f"{name}: {src} does not exist"
    assert (ROOT / "Dockerfile").exists()
    header = (ROOT / "docker-compose.yml").read_text().split("\nname:")[0]
    for f in OPERATOR_FILES:  # what the operator provides is named where the stack is described
        assert f.removeprefix("./") in header, f"docker-compose.yml's header does not say to provide {f}"


#: files the operator provides (secrets, passwords, certificates: not in git)
OPERATOR_FILES = {"./site.yaml", "./deploy/mosquitto/passwd", "./deploy/mosquitto/certs/ca.crt"}


def test_the_example_site_file_reaches_the_stacks_broker(tmp_path):
    # the collector must be able to log in to the stack's Mosquitto (authentication and TLS only):
    # its site file's password file is a secret the collector is given, its CA file is mounted into
    # it, its host is the broker's service on its TLS listener, and the certificate names that host
    from model.site import SiteConfig

    doc = load()
    collector = doc["services"]["collector"]
    example = YAML(typ="safe").load((ROOT / "deploy/site.example.yaml").read_text())
    mqtt = example["mqtt"]
    secret = mqtt["password_file"].removeprefix("/run/secrets/")
    assert mqtt["password_file"].startswith("/run/secrets/") and secret in collector["secrets"] \
        and secret in doc["secrets"], mqtt["password_file"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in collector["volumes"]}
    assert mounts.get(mqtt["tls"]["ca_certs"]) == "./deploy/mosquitto/certs/ca.crt", (mqtt["tls"], mounts)
    assert mqtt["host"] == "mqtt" and "mqtt" in collector["depends_on"]
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert f"listener {mqtt['port']}" in conf and "allow_anonymous false" in conf
    assert "DNS:mqtt," in (ROOT / "deploy/mosquitto/certs/README.md").read_text()  # the name the collector uses
    # and it is a valid site file once those files exist (as they do in the container)
    (tmp_path / "pw").write_text("secret\n")
    ca = tmp_path / "ca.crt"
    ca.write_text(_self_signed_pem())
    SiteConfig.model_validate({**example, "mqtt": {**mqtt, "password_file": str(tmp_path / "pw"),
                                                   "tls": {"ca_certs": str(ca)}}})


def _self_signed_pem() -> str:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mqtt")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_the_api_service_has_a_healthcheck_on_its_health_endpoint():
    api = load()["services"]["api"]
    assert api["command"][:2] == ["api", "serve"]
    assert "/healthz" in " ".join(api["healthcheck"]["test"])


def test_mosquitto_requires_authentication():
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "password_file" in conf


def _depends(svc) -> dict:
    dep = svc.get("depends_on", {})
    return {d: {"condition": "service_started"} for d in dep} if isinstance(dep, list) else dep


def test_every_service_has_a_healthcheck_and_dependents_wait_for_it():
    services = load()["services"]
    for name, svc in services.items():
        hc = svc.get("healthcheck")
        assert hc, f"{name}: no healthcheck"
        one_shot = svc.get("restart") == "no"
        if hc.get("disable"):
            assert one_shot, f"{name}: only a one-shot job may go without a healthcheck"
        else:
            assert hc.get("test"), f"{name}: healthcheck without a test"
        for dep, how in _depends(svc).items():
            wanted = "service_completed_successfully" if services[dep].get("restart") == "no" else "service_healthy"
            assert how.get("condition") == wanted, f"{name} waits for {dep} with {how.get('condition')}, not {wanted}"


def test_greengauge_healthchecks_are_real_commands():
    cli = get_command(app)
    for name, svc in load()["services"].items():
        test = (svc.get("healthcheck") or {}).get("test") or []
        if svc.get("image", "").startswith("greengauge:") and test and test[0] == "CMD" and test[1] == "greengauge":
            group = cli
            for w in test[2:]:
                if w.startswith(("/", "-")) or not hasattr(group, "commands"):
                    break
                assert w in group.commands, f"{name}: healthcheck {test} names no command {w!r}"
                group = group.commands[w]


def test_secrets_come_from_files_never_from_values_or_urls():
    import re

    doc = load()
    declared = doc.get("secrets", {})
    for name, s in declared.items():
        assert "file" in s, f"secret {name} must come from a file"
    for name, svc in doc["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            value = str(value)
            assert not re.search(r"://[^/@\s]+:[^@\s]*@", value), f"{name}: {key} carries a password in a URL"
            if re.search(r"PASSWORD|SECRET|TOKEN", key) and not key.endswith(("_FILE", "__FILE")):
                raise AssertionError(f"{name}: {key} is a secret given as a value; give a file (…_FILE)")
            if key.endswith(("_FILE", "__FILE")) and value.startswith("/run/secrets/"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in (svc.get("secrets") or []), f"{name}: {key} reads secret {secret} it is not given"
                assert secret in declared, f"{name}: secret {secret} is not declared"


def test_mosquitto_finds_every_file_its_configuration_names():
    svc = load()["services"]["mqtt"]
    mounts = {}
    for vol in svc["volumes"]:
        src, dst = vol.split(":")[:2]
        mounts[dst] = src
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    for line in conf.splitlines():
        words = line.split()
        if words and words[0] in {"certfile", "keyfile", "cafile", "password_file", "acl_file"}:
            path = words[1]
            assert any(path == dst or path.startswith(dst.rstrip("/") + "/") for dst in mounts), \
                f"mosquitto.conf {words[0]} {path} is not inside a mounted volume ({sorted(mounts)})"


def test_the_image_carries_every_package():
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    docker = (ROOT / "Dockerfile").read_text()
    for pattern in include:
        pkg = pattern.rstrip("*")
        assert f"COPY {pkg} {pkg}" in docker, f"Dockerfile does not copy package {pkg}/"


def test_password_file_setting_keeps_the_password_out_of_the_url(tmp_path, monkeypatch):
    import psycopg

    from model.settings import Settings

    secret = tmp_path / "pw"
    secret.write_text("p@ss:w/rd 'x'\n")
    monkeypatch.setenv("GREENGAUGE_DATABASE_URL", "postgresql://greengauge@db:5432/greengauge")
    monkeypatch.setenv("GREENGAUGE_DATABASE_PASSWORD_FILE", str(secret))
    params = psycopg.conninfo.conninfo_to_dict(Settings().database_url)
    assert params["password"] == "p@ss:w/rd 'x'" and params["host"] == "db" and params["user"] == "greengauge"
