"""The monitoring stack of docker-compose.yml, checked by reading it (docker cannot run here):
Prometheus scrapes the compose services that serve /metrics, on their metrics port, and the
provisioned Grafana dashboard queries only metrics the code registers, through the
provisioned datasource."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamrec.observability.metrics import ConsumerMetrics, ProcessMetrics, TrainerMetrics
from trainer.metrics import RunMetrics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "streamrec.json"
METRICS_PORT_VARIABLE = "STREAMREC_OBSERVABILITY__METRICS_PORT"
# The streamrec commands that serve /metrics (docs/operations.md, Metrics).
COMMANDS_WITH_METRICS = {"consume", "trainer"}
# A metric name in a PromQL expression.
METRIC_NAME = re.compile(r"\bstreamrec_[a-z0-9_]+\b")
# The series a family of each type exposes, by suffix.
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _services() -> dict[str, Any]:
    return _yaml(COMPOSE_FILE)["services"]


def _metrics_services() -> dict[str, int]:
    """The compose services running a streamrec command with /metrics, with their port."""
    found = {}
    for name, service in _services().items():
        command = service.get("command") or []
        if command and command[0] in COMMANDS_WITH_METRICS:
            port = int(service["environment"][METRICS_PORT_VARIABLE])
            assert str(port) in [str(exposed) for exposed in service.get("expose", [])], name
            found[name] = port
    return found


def _scrape_targets() -> dict[str, set[tuple[str, int]]]:
    """(host, port) pairs each Prometheus job scrapes: static targets and DNS names."""
    targets: dict[str, set[tuple[str, int]]] = {}
    for job in _yaml(PROMETHEUS_CONFIG)["scrape_configs"]:
        pairs = targets.setdefault(job["job_name"], set())
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                pairs.add((host, int(port)))
        for discovery in job.get("dns_sd_configs", []):
            pairs.update((name, int(discovery["port"])) for name in discovery["names"])
    return targets


def _registered_series() -> set[str]:
    """Every series name the processes' registries can expose (labelled families have no
    sample before their first observation, so names come from the families and their types)."""
    trainer = TrainerMetrics()
    RunMetrics(trainer)  # the trainer process's own metrics, on the same registry
    names = set()
    for metrics in (ConsumerMetrics(), trainer, ProcessMetrics()):
        for family in metrics.registry.collect():
            names.update(f"{family.name}{suffix}" for suffix in SERIES_SUFFIXES[family.type])
            names.update(sample.name for sample in family.samples)
    return names


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _provisioned_datasource() -> dict[str, Any]:
    sources = []
    for path in sorted((GRAFANA / "provisioning" / "datasources").glob("*.yml")):
        sources += _yaml(path)["datasources"]
    [prometheus] = [source for source in sources if source["type"] == "prometheus"]
    return prometheus


def test_prometheus_scrapes_every_metrics_service_of_the_compose_file_on_its_port() -> None:
    services = _metrics_services()
    assert set(services) == {"consumer", "trainer"}
    scraped = {pair for pairs in _scrape_targets().values() for pair in pairs}

    assert scraped == set(services.items())


def test_the_compose_file_runs_prometheus_and_grafana_on_the_files_of_deploy() -> None:
    services = _services()
    mounts = {
        name: {
            volume.split(":")[1]: volume.split(":")[0]
            for volume in services[name]["volumes"]
            if volume.startswith("./")
        }
        for name in ("prometheus", "grafana")
    }

    prometheus = mounts["prometheus"]
    config_flag = next(
        flag for flag in services["prometheus"]["command"] if flag.startswith("--config.file=")
    )
    mounted = prometheus[config_flag.partition("=")[2]]
    assert (ROOT / mounted).resolve() == PROMETHEUS_CONFIG
    grafana = mounts["grafana"]
    assert (ROOT / grafana["/etc/grafana/provisioning"]).resolve() == GRAFANA / "provisioning"
    [provider] = _yaml(GRAFANA / "provisioning" / "dashboards" / "streamrec.yml")["providers"]
    assert (ROOT / grafana[provider["options"]["path"]]).resolve() == DASHBOARD.parent
    # The datasource's URL reaches the prometheus service on Prometheus's port.
    assert _provisioned_datasource()["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in services["prometheus"]["ports"]


def test_every_dashboard_query_names_a_metric_the_code_registers() -> None:
    registered = _registered_series()
    queried = set()
    for panel in _panels(_dashboard()["panels"]):
        for target in panel.get("targets", []):
            names = set(METRIC_NAME.findall(target["expr"]))
            assert names, f"panel {panel['title']!r}: {target['expr']!r} names no metric"
            unknown = names - registered
            assert not unknown, f"panel {panel['title']!r} queries unregistered {unknown}"
            queried |= names

    # The panels operators asked for: throughput, lag, latency, dead letters, trainer runs.
    for wanted in (
        "streamrec_events_processed_total",
        "streamrec_consumer_lag_records",
        "streamrec_event_to_recommendation_seconds_bucket",
        "streamrec_dead_letters_total",
        "streamrec_trainer_runs_total",
    ):
        assert wanted in queried, wanted


def test_dashboard_panels_have_unique_ids_and_use_the_provisioned_datasource() -> None:
    dashboard = _dashboard()
    panels = list(_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    datasource = {"type": "prometheus", "uid": _provisioned_datasource()["uid"]}
    queries = [panel for panel in panels if panel["type"] != "row"]
    assert queries
    for panel in queries:
        assert panel["datasource"] == datasource, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["datasource"] == datasource for target in panel["targets"])
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    assert dashboard["uid"] and dashboard["title"]


@pytest.mark.parametrize("bad", ["streamrec_events_processed", "streamrec_no_such_metric"])
def test_the_registered_names_tell_a_misspelt_metric_apart(bad: str) -> None:
    # A counter is exposed with _total only: the family name alone matches no series.
    assert bad not in _registered_series()
