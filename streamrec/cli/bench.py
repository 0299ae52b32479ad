"""``streamrec bench NAME``: measurements of quality, speed and scale (not tests).

Each benchmark is a module ``streamrec.benchmarks.<name>`` exposing a click command named
``command``; add its name to BENCHMARK_MODULES to list it here. Modules are imported only when
their benchmark runs.
"""

from __future__ import annotations

import importlib

import click

BENCHMARK_MODULES = [
    "prequential",
    "pipeline",
    "trainer",
    "recommendation_latency",
    "soak",
    "serve_latency",
    "autoencoder_epochs",
    "candidate_recall",
    "objectives",
    "configs",
]


class BenchmarkGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name.replace("_", "-") for name in BENCHMARK_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = cmd_name.replace("-", "_")
        if module_name not in BENCHMARK_MODULES:
            return None
        return importlib.import_module(f"streamrec.benchmarks.{module_name}").command


@click.group(name="bench", cls=BenchmarkGroup)
@click.pass_context
def command(ctx: click.Context) -> None:
    """Benchmarks: results go to bench/results/, named by what differs from the defaults;
    a document (docs/performance.md) only with --doc. SIGTERM and Ctrl-C stop everything a
    benchmark started."""
    from streamrec.cli.stopping import stopping_cleanly_on_signals

    # Entered for the benchmark's whole run, left when the group's context closes.
    ctx.with_resource(stopping_cleanly_on_signals())
