"""docker-compose.yml is what users deploy: it must parse and be coherent."""

from pathlib import Path

import yaml

from ops.workers import WORKERS

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_parses_and_names_the_services():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("web", "worker", "escalation-worker", "beat"):
        service = services[name]
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
        assert service["environment"]["CELERY_BROKER_URL"].startswith("redis://")
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The workers of ops/workers.py, as runall starts them: the default queue on prefork, the
    # escalation queue on threads; between them every queue is served.
    assert f"-Q {WORKERS[0].queues} -P {WORKERS[0].pool} " in services["worker"]["command"]
    assert f"-Q {WORKERS[1].queues} -P {WORKERS[1].pool} " in services["escalation-worker"]["command"]
    served = {q for name in ("worker", "escalation-worker")
              for q in services[name]["command"].split("-Q ", 1)[1].split()[0].split(",")}
    assert served == {"escalation", "default"}
    assert "DatabaseScheduler" in services["beat"]["command"]


def test_the_image_holds_every_package_of_the_product():
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = ("base", "calendars", "tickets", "escalation", "slackbot", "ops", "slabuddy")
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")}
    assert set(packages) <= copied
