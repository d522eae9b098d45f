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
            if src.startswith("./") and not src.endswith(("site.yaml", "passwd", ".pem")):
                assert (ROOT / src).exists(), f"{name}: {src} does not exist"
    assert (ROOT / "Dockerfile").exists()


def test_the_api_service_has_a_healthcheck_on_its_health_endpoint():
    api = load()["services"]["api"]
    assert api["command"][:2] == ["api", "serve"]
    assert "/healthz" in " ".join(api["healthcheck"]["test"])


def test_mosquitto_requires_authentication():
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "password_file" in conf
