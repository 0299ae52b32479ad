"""``streamrec bench serve-latency`` (or ``python -m streamrec.benchmarks.serve_latency``):
how long ``streamrec serve`` takes to answer with explained recommendations, for a stored
user and for an ad-hoc history (the goal: single-digit milliseconds).

It reads the settings' database, which must serve an active version with stored users;
``--dataset NAME`` first fills an empty database: the dataset's interactions, items and
demographics stored, a model trained for ``--steps`` and every user's state built (what
``streamrec train dataset`` does, plus the interactions a consumer would have stored).

Four paths are timed, each request one at a time on one connection:

- **stored user, HTTP**: ``GET /api/users/{id}/recommendations`` against ``streamrec serve``
  in a child process (uvicorn, one worker), over a kept-alive HTTP/1.1 connection;
- **ad-hoc history, HTTP**: ``POST /api/recommendations`` with that user's history (at most
  ``--history-items`` of their latest items, with their weights);
- the same two **in process**: the work behind each endpoint (``services.explaining``,
  database reads included) without HTTP and JSON, to show what HTTP adds.

Every user is requested once untimed per path first (the model's item cache, the database's
buffers), then ``--repeats`` times.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from streamrec.benchmarks.recommendation_latency import latency_statistics, timed
from streamrec.benchmarks.results import output_options
from streamrec.config import Settings

GOAL_MS = 10.0
STORED_HTTP = "stored user, HTTP"
HISTORY_HTTP = "ad-hoc history, HTTP"
STORED_IN_PROCESS = "stored user, in process"
HISTORY_IN_PROCESS = "ad-hoc history, in process"
SERVER_START_SECONDS = 120.0


def prepare(settings: Settings, dataset_name: str, steps: int | None) -> str:
    """Fill the settings' database from a dataset, unless it already serves a version;
    returns what was done."""
    from streamrec.datasets.registry import load_dataset
    from streamrec.services.dataset_training import train_and_activate
    from streamrec.state import Interaction
    from streamrec.storage import UnitOfWork, create_database_engine
    from streamrec.storage.migrations import upgrade

    upgrade(settings.effective_database_url, timeouts=settings.timeouts)
    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
    try:
        with UnitOfWork(engine) as uow:
            if uow.models.active_version() is not None:
                return "the database already serves a version: used as it is"
        dataset = load_dataset(dataset_name, settings)
        table = dataset.table
        with UnitOfWork(engine) as uow:
            uow.items.save_many(dataset.items.values())
            uow.users.save_attributes(dataset.user_attributes)
            uow.interactions.save_many(
                Interaction(
                    table.user_vocabulary[table.users[row]],
                    table.item_vocabulary[table.items[row]],
                    float(table.weights[row]),
                    f"{dataset.name}:{row}",
                    dataset.event_type,
                    float(table.timestamps[row]),
                )
                for row in range(len(table))
            )
            uow.commit()
        version = train_and_activate(settings, engine, dataset, steps=steps, progress=True)
    finally:
        engine.dispose()
    return f"{dataset.name} stored, version {version} trained ({steps or 'default'} steps)"


def server_environment(settings: Settings) -> dict[str, str]:
    """The environment of a ``streamrec serve`` child with ``settings``; reading is left open
    (a benchmark's child, on loopback)."""
    from streamrec.benchmarks.consumer_processes import settings_environment

    environment = {
        name: value
        for name, value in settings_environment(settings).items()
        if not name.startswith("STREAMREC_API__") or not name.endswith("_TOKEN")
    }
    environment["STREAMREC_OBSERVABILITY__LOG_LEVEL"] = "WARNING"
    return environment


class ServeProcess:
    """``streamrec serve`` on a free loopback port in a child process."""

    def __init__(self, settings: Settings) -> None:
        from streamrec.broker import free_port

        self.port = free_port()
        self._command = [
            sys.executable,
            "-m",
            "streamrec.cli.main",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self._environment = server_environment(settings)
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServeProcess:
        self._process = subprocess.Popen(
            self._command, env=self._environment, stdout=self._output, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._output.seek(0)
                raise click.ClickException(
                    "streamrec serve exited: " + self._output.read().decode(errors="replace")
                )
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    connection.close()
                    return self
            except OSError:
                time.sleep(0.2)
        raise click.ClickException("streamrec serve did not answer in time")

    def __exit__(self, *exception: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._output.close()


def request_json(
    connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None
) -> Any:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    if response.status != 200:
        raise click.ClickException(f"{method} {path}: {response.status} {payload[:300]!r}")
    return json.loads(payload)


def measure(
    settings: Settings, users: int, repeats: int, history_items: int, seed: int
) -> dict[str, Any]:
    from urllib.parse import quote

    from streamrec.services.explaining import Explainer, HistoryEntry, explained_document
    from streamrec.storage import UnitOfWork, create_database_engine

    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
    try:
        with UnitOfWork(engine) as uow:
            version = uow.models.active_version()
            if version is None:
                raise click.ClickException(
                    "no active model version: pass --dataset to fill the database first"
                )
            stored = uow.users.ids(limit=1_000_000)
            if not stored:
                raise click.ClickException("no stored user to ask for")
            chosen = sorted(
                np.random.default_rng(seed).choice(stored, min(users, len(stored)), False)
            )
            interactions = uow.interactions.for_users(chosen)
            counts = {"users": uow.users.count(version), "items": uow.items.count()}
        histories = {
            user_id: [
                HistoryEntry(row.item_id, row.weight)
                for row in sorted(rows, key=lambda row: -row.timestamp)[:history_items]
            ]
            for user_id, rows in interactions.items()
        }
        chosen = [user_id for user_id in chosen if histories.get(user_id)]
        explainer = Explainer(settings.serving)

        def in_process_user(user_id: str) -> Callable[[], object]:
            def ask() -> object:
                with UnitOfWork(engine) as uow:
                    explained = explainer.for_user(uow, user_id, time.time())
                    assert explained is not None
                    return explained_document(explained)

            return ask

        def in_process_history(user_id: str) -> Callable[[], object]:
            def ask() -> object:
                with UnitOfWork(engine) as uow:
                    explained = explainer.for_history(uow, histories[user_id], time.time())
                    assert explained is not None
                    return explained_document(explained)

            return ask

        durations: dict[str, list[int]] = {
            STORED_HTTP: [],
            HISTORY_HTTP: [],
            STORED_IN_PROCESS: [],
            HISTORY_IN_PROCESS: [],
        }
        with ServeProcess(settings) as server:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                for user_id in chosen:
                    path = f"/api/users/{quote(user_id, safe='')}/recommendations"
                    body = json.dumps(
                        {
                            "items": [
                                {"item_id": entry.item_id, "weight": entry.weight}
                                for entry in histories[user_id]
                            ]
                        }
                    ).encode()
                    requests: dict[str, Callable[[], object]] = {
                        STORED_HTTP: lambda path=path: request_json(connection, "GET", path),
                        HISTORY_HTTP: lambda body=body: request_json(
                            connection, "POST", "/api/recommendations", body
                        ),
                        STORED_IN_PROCESS: in_process_user(user_id),
                        HISTORY_IN_PROCESS: in_process_history(user_id),
                    }
                    for name, request in requests.items():
                        request()  # untimed: warms the caches for this user
                        durations[name] += timed(request, repeats)
            finally:
                connection.close()
    finally:
        engine.dispose()
    return {
        "database": engine.url.get_backend_name(),
        "model_version": version,
        "stored_users": counts["users"],
        "items": counts["items"],
        "users": len(chosen),
        "repeats": repeats,
        "history_items": history_items,
        "mean_history_items": float(np.mean([len(histories[u]) for u in chosen])),
        "clusters": settings.model.clusters,
        "top_memberships": settings.serving.top_memberships,
        "shortlist_length": settings.serving.shortlist_length,
        "recommendations": settings.serving.recommendations,
        "rerank": settings.serving.rerank,
        "paths": {name: latency_statistics(values) for name, values in durations.items()},
        "durations_ns": durations,
    }


def report_markdown(result: dict[str, Any], preparation: str) -> str:
    from streamrec.benchmarks.results import markdown_table

    rows = [
        [
            name,
            f"{stats['p50_ms']:.2f}",
            f"{stats['p95_ms']:.2f}",
            f"{stats['p99_ms']:.2f}",
            f"{stats['max_ms']:.2f}",
        ]
        for name, stats in result["paths"].items()
    ]
    worst_p99 = max(result["paths"][name]["p99_ms"] for name in (STORED_HTTP, HISTORY_HTTP))
    met = "met" if worst_p99 < GOAL_MS else "**not met**"
    machine = result.get("machine", {})
    lines = [
        f"{result['users']} stored users x {result['repeats']} requests per path, one at a "
        f"time on one connection, against `streamrec serve` (one uvicorn worker) on "
        f"{result['database']} with model version {result['model_version']} "
        f"({result['stored_users']:,} users with state, {result['items']:,} items; K "
        f"{result['clusters']}, M {result['top_memberships']}, L {result['shortlist_length']}, "
        f"N {result['recommendations']}, re-ranking {'on' if result['rerank'] else 'off'}). "
        f"Ad-hoc histories: each user's latest {result['history_items']} items at most "
        f"({result['mean_history_items']:.0f} on average). Database: {preparation}.",
        "",
        markdown_table(["path", "p50 (ms)", "p95 (ms)", "p99 (ms)", "max (ms)"], rows),
        f"Goal: single-digit milliseconds over HTTP; the worse p99 of the two HTTP paths is "
        f"{worst_p99:.2f} ms: {met}. Machine: {machine.get('cpus', '?')} x "
        f"{machine.get('cpu', '?')}, "
        f"{machine.get('platform', '?')}, Python {machine.get('python', '?')}, "
        f"measured {machine.get('measured_at', '?')}.",
    ]
    return "\n".join(lines) + "\n"


def cpu_model() -> str:
    """The processor's name, from /proc/cpuinfo where there is one."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


@click.command(name="serve-latency")
@click.option(
    "--dataset",
    "dataset_name",
    default=None,
    help="Fill an empty database from this dataset first (e.g. ml-latest-small).",
)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Training steps.")
@click.option("--users", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--history-items", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@output_options(section="the 'API latency (streamrec serve)' section")
@click.pass_obj
def command(
    settings: Settings,
    dataset_name: str | None,
    steps: int | None,
    users: int,
    repeats: int,
    history_items: int,
    seed: int,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """Time the API's explained recommendations: stored users and ad-hoc histories."""
    import torch

    from streamrec.benchmarks.results import (
        machine_description,
        replace_section,
        safe_stem,
        write_results,
    )

    torch.set_num_threads(1)  # as `streamrec serve` runs
    preparation = "used as it is"
    if dataset_name is not None:
        preparation = prepare(settings, dataset_name, steps)
        click.echo(preparation, err=True)
    else:
        from streamrec.storage.migrations import require_migrated_database

        # Only read: a missing or unmigrated database is one line, and nothing is created.
        require_migrated_database(settings.effective_database_url, settings.timeouts)
    result = measure(settings, users, repeats, history_items, seed)
    result["machine"] = machine_description() | {"cpu": cpu_model()}
    markdown = report_markdown(result, preparation)
    click.echo(markdown)
    stem = f"serve-latency-{safe_stem(dataset_name or 'database')}"
    written = write_results(output_dir, stem, result, markdown)
    if doc is not None:
        replace_section(doc, "API latency (streamrec serve)", markdown)
        written.append(doc)
    for path in written:
        click.echo(f"wrote {path}", err=True)


def main() -> None:
    """``python -m streamrec.benchmarks.serve_latency``: the command with the settings of the
    environment (and ``STREAMREC_CONFIG_FILE``)."""
    from streamrec.config import load_settings

    command.main(prog_name="serve-latency", obj=load_settings())


if __name__ == "__main__":
    main()
