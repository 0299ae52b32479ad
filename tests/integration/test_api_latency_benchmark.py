"""``streamrec bench serve-latency``, run small against PostgreSQL: it starts `streamrec
serve`, times every path and writes what it promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamrec.benchmarks.serve_latency import (
    HISTORY_HTTP,
    HISTORY_IN_PROCESS,
    STORED_HTTP,
    STORED_IN_PROCESS,
)
from streamrec.cli.bench import command as bench
from tests.fixtures.databases import PostgresqlSchemas
from tests.integration.api_support import build_served_state

pytestmark = pytest.mark.postgres


def test_the_api_latency_benchmark_times_every_path(
    postgresql_server_url: str, postgresql_schemas: PostgresqlSchemas, tmp_path: Path
) -> None:
    served = build_served_state(postgresql_server_url, postgresql_schemas)
    document = tmp_path / "performance.md"
    outcome = CliRunner().invoke(
        bench,
        [
            "serve-latency",
            "--users",
            "3",
            "--repeats",
            "2",
            "--output-dir",
            str(tmp_path),
            "--doc",
            str(document),
        ],
        obj=served.settings,
        catch_exceptions=False,
    )
    assert outcome.exit_code == 0, outcome.output
    result = json.loads((tmp_path / "serve-latency-database.json").read_text())
    assert set(result["paths"]) == {
        STORED_HTTP,
        HISTORY_HTTP,
        STORED_IN_PROCESS,
        HISTORY_IN_PROCESS,
    }
    assert all(len(values) == 3 * 2 for values in result["durations_ns"].values())
    assert result["model_version"] == served.versions[-1]
    assert "## API latency (streamrec serve)" in document.read_text()
