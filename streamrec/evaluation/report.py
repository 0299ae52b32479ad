"""Presenting an EvaluationRun: a rich table for the terminal, JSON and Markdown files.

Files go to ``<directory>/eval-<dataset>-<protocol>-seed<seed>[-<what else differs>].{json,md}``
(and ``-sweep.png`` for a sweep): the command adds the options and settings that differ from
the defaults (``streamrec.benchmarks.results``), so runs on different data, protocols, seeds,
methods or settings never overwrite each other.

>>> from streamrec.evaluation.harness import EvaluationRun, MethodResult
>>> run = EvaluationRun("ml-1m", "cold-users", 0, {"test_users": 2})
>>> run.results.append(MethodResult("popularity", {"precision@50": 0.25}, 0.1, 0.2, 0.5, 0))
>>> print(markdown_table(run).splitlines()[2].split("|")[1:3])
[' popularity ', ' 0.250 ']
>>> result_stem(run)
'eval-ml-1m-cold-users-seed0'
>>> result_stem(run, ["config-ml-1m"])
'eval-ml-1m-cold-users-seed0-config-ml-1m'
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from rich.table import Table

from streamrec.evaluation.harness import (
    COLD_USERS_CUTOFF,
    LEAVE_ONE_OUT_CUTOFFS,
    EvaluationRun,
    MethodResult,
)
from streamrec.evaluation.splits import COLD_USERS, LEAVE_ONE_OUT

Column = tuple[str, Callable[[MethodResult], str]]


def _metric(name: str, digits: int = 3) -> Callable[[MethodResult], str]:
    return lambda result: _number(result.metrics.get(name), digits)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


_K = COLD_USERS_CUTOFF
_COST_COLUMNS: list[Column] = [
    ("train (s)", lambda result: _number(result.training_seconds, 1)),
    ("latency p50 (ms)", lambda result: _number(result.latency_p50_ms, 2)),
    ("latency p99 (ms)", lambda result: _number(result.latency_p99_ms, 2)),
    ("parameters", lambda result: f"{result.parameter_count:,}"),
]
COLUMNS: dict[str, list[Column]] = {
    COLD_USERS: [
        (f"P@{_K}", _metric(f"precision@{_K}")),
        (f"R@{_K}", _metric(f"recall@{_K}")),
        (f"NDCG@{_K}", _metric(f"ndcg@{_K}")),
        (f"P@{_K} liked", _metric(f"liked_precision@{_K}")),
        ("coverage", _metric(f"coverage@{_K}")),
        *_COST_COLUMNS,
    ],
    LEAVE_ONE_OUT: [
        *[(f"HR@{k}", _metric(f"hr@{k}", 4)) for k in LEAVE_ONE_OUT_CUTOFFS],
        *[(f"NDCG@{k}", _metric(f"ndcg@{k}", 4)) for k in LEAVE_ONE_OUT_CUTOFFS],
        *_COST_COLUMNS,
    ],
}


def result_stem(run: EvaluationRun, differs: Sequence[str] = ()) -> str:
    """The file stem of the run: dataset, protocol, seed, then ``differs`` (file-name-safe
    parts saying what else differs from a default run)."""
    safe_dataset = re.sub(r"[^A-Za-z0-9_.-]+", "_", run.dataset).strip("_") or "dataset"
    return "-".join([f"eval-{safe_dataset}-{run.protocol}-seed{run.seed}", *differs])


def rich_table(run: EvaluationRun) -> Table:
    table = Table(title=f"{run.dataset}, protocol {run.protocol}, seed {run.seed}")
    table.add_column("method")
    for header, _ in COLUMNS[run.protocol]:
        table.add_column(header, justify="right")
    for result in run.results:
        table.add_row(result.method, *[cell(result) for _, cell in COLUMNS[run.protocol]])
    return table


def markdown_table(run: EvaluationRun) -> str:
    headers = ["method", *[header for header, _ in COLUMNS[run.protocol]]]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    for result in run.results:
        cells = [result.method, *[cell(result) for _, cell in COLUMNS[run.protocol]]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(run: EvaluationRun) -> str:
    split = ", ".join(f"{key} {value}" for key, value in run.split.items())
    sections = [
        f"# Evaluation: {run.dataset}, protocol {run.protocol}, seed {run.seed}",
        f"Split: {split}.",
        "streamrec settings changed from the defaults: "
        + (", ".join(f"`{name}` {value}" for name, value in run.settings.items()) or "none")
        + ".",
        markdown_table(run),
    ]
    notes = [f"- {name}: {reason}" for name, reason in run.skipped.items()]
    notes += [
        f"- {result.method}: {result.contract_violations} recommended items removed "
        "(history items, duplicates or beyond the list length)"
        for result in run.results
        if result.contract_violations
    ]
    notes += [
        f"- {result.method}: {cluster_summary(result.cluster_sizes)}"
        for result in run.results
        if result.cluster_sizes
    ]
    paper = [
        f"{result.method} {value:.3f}"
        for result in run.results
        if (value := result.metrics.get(f"paper_precision@{_K}")) is not None
    ]
    if paper:
        notes.append(
            '- the paper\'s "precision" (the liked share of the recommended items the user '
            f"rated in the test data; not Precision@K): {', '.join(paper)}"
        )
    if notes:
        sections.append("Notes:\n\n" + "\n".join(notes))
    if run.sweep:
        sections.append(sweep_markdown(run))
    return "\n\n".join(sections) + "\n"


def cluster_summary(sizes: list[float] | None) -> str:
    """One line on how evenly users spread over clusters (collapse shows as one big share)."""
    if not sizes:
        return "no cluster sizes"
    values = np.asarray(sizes, dtype=np.float64)
    total = values.sum()
    largest_share = values.max() / total if total > 0 else 0.0
    return (
        f"{values.size} clusters, sizes min {values.min():.1f} median {np.median(values):.1f} "
        f"max {values.max():.1f} (largest {largest_share:.0%} of the total), "
        f"{int((values <= 0).sum())} empty"
    )


def sweep_markdown(run: EvaluationRun) -> str:
    if not run.sweep:
        return ""
    metric_names = list(run.sweep[0]["metrics"])
    headers = ["K", "L", "train (s)", *metric_names]
    lines = [
        "## streamrec sweep over clusters K and shortlist length L",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    for point in run.sweep:
        cells = [
            str(point["clusters"]),
            str(point["shortlist_length"]),
            _number(point["training_seconds"], 1),
            *[_number(point["metrics"][name], 4) for name in metric_names],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def document_section(run: EvaluationRun, files: Mapping[str, Path]) -> tuple[str, str]:
    """(title, body) of the run's section in a results document such as docs/quality.md:
    the report without its title, headings one level down, and where the files are.

    >>> from streamrec.evaluation.harness import EvaluationRun
    >>> title, body = document_section(
    ...     EvaluationRun("ml-1m", "cold-users", 0, {}), {"json": Path("r/x.json")})
    >>> title, body.splitlines()[0]
    ('ml-1m, cold-users, seed 0', 'Measured by `streamrec eval`; raw numbers in r/x.json.')
    """
    report = markdown_report(run).split("\n", 1)[1].strip()
    report = re.sub(r"^(#+) ", r"#\1 ", report, flags=re.MULTILINE)
    lines = [f"Measured by `streamrec eval`; raw numbers in {files['json'].as_posix()}.", ""]
    lines.append(report)
    if "plot" in files:
        lines += ["", f"![{files['plot'].stem}](../{files['plot'].as_posix()})"]
    return f"{run.dataset}, {run.protocol}, seed {run.seed}", "\n".join(lines) + "\n"


def write_results(
    run: EvaluationRun, directory: Path, differs: Sequence[str] = ()
) -> dict[str, Path]:
    """Write the run as JSON and Markdown under directory, named by ``result_stem``; the
    paths written, by format."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = result_stem(run, differs)
    paths = {"json": directory / f"{stem}.json", "markdown": directory / f"{stem}.md"}
    paths["json"].write_text(json.dumps(run.to_dict(), indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown_report(run), encoding="utf-8")
    return paths
