"""``streamrec eval``: offline quality of streamrec beside the baselines, on one split.

Example: ``streamrec eval --dataset ml-1m --protocol cold-users --seed 0 --methods ease,als``.
Results are printed as a table and written under ``--output-dir`` as JSON and Markdown (and a
PNG with ``--sweep``), named by the dataset, protocol, seed and whatever else differs from the
defaults (methods, options, settings); a document such as docs/quality.md is written only
with ``--doc``. See docs/evaluation.md for the protocols and the reference numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal

import click
from rich.console import Console

from streamrec.benchmarks.results import replace_section, run_differences
from streamrec.cli.display import print_table
from streamrec.config import Settings, changed_model_settings
from streamrec.datasets.base import Dataset
from streamrec.datasets.registry import load_dataset
from streamrec.evaluation.harness import EvaluationRun, evaluate
from streamrec.evaluation.methods import (
    AUTOENCODERS,
    METHOD_NAMES,
    STREAMREC,
    MethodOptions,
    MethodUnavailable,
    build_method,
)
from streamrec.evaluation.plots import plot_sweep
from streamrec.evaluation.protocol import OfflineRecommender
from streamrec.evaluation.report import document_section, result_stem, rich_table, write_results
from streamrec.evaluation.splits import PROTOCOLS, EvaluationSplit, split_for
from streamrec.evaluation.sweep import DEFAULT_CLUSTERS, DEFAULT_SHORTLIST_LENGTHS, sweep

# Options the stem names already (dataset, protocol, seed), or that change nothing the result
# files hold about quality: where files go, the display, the sweep's grid (a sweep adds to
# the same run), and the latency sample and threads (timings, not quality).
OPTIONS_NAMED_OR_NOT_MEASURED = frozenset(
    {
        "dataset_name",
        "protocol",
        "seed",
        "run_sweep",
        "sweep_clusters",
        "sweep_lengths",
        "latency_users",
        "threads",
        "output_dir",
        "doc",
        "progress",
    }
)


def _names(_: click.Context, __: click.Parameter, value: str | None) -> list[str]:
    if not value:
        return list(METHOD_NAMES)
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in METHOD_NAMES]
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; known: {', '.join(METHOD_NAMES)}")
    return names


def _integers(_: click.Context, __: click.Parameter, value: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if not numbers or any(number < 1 for number in numbers):
        raise click.BadParameter("give one or more positive integers, e.g. 8,16,43")
    return numbers


@click.command(name="eval")
@click.option("--dataset", "dataset_name", required=True, help="A dataset name or directory.")
@click.option(
    "--protocol",
    type=click.Choice(PROTOCOLS),
    default=PROTOCOLS[0],
    show_default=True,
    help="cold-users: the paper's (65/35 users, 50/50 history); loo: leave the last item out.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of split and models.")
@click.option(
    "--methods",
    callback=_names,
    default=None,
    help=f"Comma-separated subset of {','.join(METHOD_NAMES)} (default: all).",
)
@click.option("--sweep", "run_sweep", is_flag=True, help="Also sweep streamrec's K and L; plot.")
@click.option(
    "--sweep-clusters",
    callback=_integers,
    default=",".join(map(str, DEFAULT_CLUSTERS)),
    show_default=True,
)
@click.option(
    "--sweep-lengths",
    callback=_integers,
    default=",".join(map(str, DEFAULT_SHORTLIST_LENGTHS)),
    show_default=True,
)
@click.option(
    "--ease-lambda",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="EASE regularisation (default: 300 MovieLens, 50 Amazon).",
)
@click.option(
    "--candidates",
    type=click.Choice(("shortlists", "catalogue")),
    default="shortlists",
    show_default=True,
    help="What streamrec ranks: its top-M clusters' shortlists (what the consumer serves) "
    "or every training item by retrieval score (docs/model.md, 'Candidate recall').",
)
@click.option(
    "--autoencoder-epochs",
    type=click.IntRange(min=0),
    default=None,
    help="Mult-DAE/VAE training epochs (default: as chosen on the dataset's validation "
    "users, see docs/model.md).",
)
@click.option(
    "--latency-users",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Test users timed one at a time for the latency percentiles.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPU threads for BLAS, torch and ALS (the machine may be shared).",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench/results"),
    show_default=True,
)
@click.option(
    "--doc",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the run as a section of this Markdown document (e.g. docs/quality.md).",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.pass_obj
def command(
    settings: Settings,
    dataset_name: str,
    protocol: str,
    seed: int,
    methods: list[str],
    run_sweep: bool,
    sweep_clusters: list[int],
    sweep_lengths: list[int],
    ease_lambda: float | None,
    candidates: Literal["shortlists", "catalogue"],
    autoencoder_epochs: int | None,
    latency_users: int,
    threads: int,
    output_dir: Path,
    doc: Path | None,
    progress: bool,
) -> None:
    """Run the selected methods on ONE split of a dataset and report them side by side."""
    differs = run_differences(
        changed_model_settings(settings), leave_out=OPTIONS_NAMED_OR_NOT_MEASURED
    )
    console = Console(stderr=True)
    with console.status(f"loading {dataset_name}"):
        dataset = load_dataset(dataset_name, settings)
        split = split_for(protocol, dataset, seed)
    console.print(
        f"{dataset.name}: " + ", ".join(f"{key} {value}" for key, value in split.summary().items())
    )
    options = MethodOptions(
        dataset_name=dataset.name,
        seed=seed,
        ease_lambda=ease_lambda,
        candidates=candidates,
        autoencoder_epochs=autoencoder_epochs,
        threads=threads,
        progress=progress,
    )
    run = EvaluationRun(
        dataset.name, protocol, seed, split.summary(), settings=changed_model_settings(settings)
    )
    needs_torch = run_sweep or bool({STREAMREC, *AUTOENCODERS} & set(methods))
    with _limited_threads(threads, needs_torch=needs_torch):
        for name in methods:
            try:
                recommender = build_method(name, options, settings)
            except MethodUnavailable as reason:
                run.skipped[name] = str(reason)
                console.print(f"[yellow]{reason}[/yellow]")
                continue
            console.print(f"running {name} ...")
            try:
                result = evaluate(recommender, split, dataset, latency_users, seed, progress)
            except (ValueError, RuntimeError, MemoryError) as error:
                # One failing method must not lose the others' results.
                run.skipped[name] = f"failed: {type(error).__name__}: {error}"
                console.print(f"[red]{name} failed: {error}[/red]")
                continue
            result.method = name
            run.results.append(result)
        plot_path = None
        if run_sweep:
            grid = (sweep_clusters, sweep_lengths)
            plot_path = _sweep(
                run, split, dataset, options, settings, grid, output_dir / result_stem(run, differs)
            )
    print_table(rich_table(run))
    paths = write_results(run, output_dir, differs)
    if plot_path:
        paths["plot"] = plot_path
    if doc is not None:
        title, body = document_section(run, paths)
        replace_section(doc, title + (f" ({', '.join(differs)})" if differs else ""), body)
        paths["doc"] = doc
    for path in paths.values():
        console.print(f"wrote {path}")


def _sweep(
    run: EvaluationRun,
    split: EvaluationSplit,
    dataset: Dataset,
    options: MethodOptions,
    settings: Settings,
    grid: tuple[list[int], list[int]],
    results_stem: Path,
) -> Path | None:
    """Sweep streamrec over the (K values, L values) grid; the plot's path (``results_stem``
    with ``-sweep.png``), None if skipped."""

    def build(clusters: int, shortlist_length: int) -> OfflineRecommender:
        return build_method(
            STREAMREC,
            replace(options, clusters=clusters, shortlist_length=shortlist_length),
            settings,
        )

    clusters, lengths = grid
    try:
        for k in clusters:  # cheap constructions: an invalid K or L fails before any training
            for length in lengths:
                build(k, length)
    except MethodUnavailable as reason:
        run.skipped["sweep"] = str(reason)
        return None
    points = sweep(build, split, dataset, clusters, lengths, options.progress)
    run.sweep = [point.to_dict() for point in points]
    title = f"streamrec on {run.dataset} ({run.protocol}, seed {run.seed})"
    baselines = {result.method: result.metrics for result in run.results}
    path = results_stem.with_name(f"{results_stem.name}-sweep.png")
    return plot_sweep(points, run.protocol, title, path, references=baselines)


@contextlib.contextmanager
def _limited_threads(threads: int, needs_torch: bool) -> Iterator[None]:
    """Cap BLAS (and torch) threads: the benchmark shares the machine."""
    if needs_torch:
        import torch

        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(threads):
        yield
