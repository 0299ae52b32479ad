"""Where benchmark results go: JSON (everything) and Markdown (the table) under bench/results/,
named by what was measured, so runs of different benchmarks or sizes never overwrite each
other; a rerun of the same one replaces its files.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as directory:
...     paths = write_results(Path(directory), "demo", {"a": 1}, "| a |\\n|---|\\n| 1 |\\n")
...     [path.name for path in paths]
['demo.json', 'demo.md']
>>> markdown_table(["method", "HR"], [["popularity", "0.120"]])
'| method | HR |\\n|---|---|\\n| popularity | 0.120 |\\n'
"""

from __future__ import annotations

import json
import platform
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

DEFAULT_RESULTS_DIRECTORY = Path("bench/results")


def safe_stem(text: str) -> str:
    """A file-name-safe version of ``text`` (dataset paths become their last part)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(text).name or text).strip("-") or "run"


def machine_description() -> dict[str, Any]:
    """What the numbers were measured on (shared, noisy: compare ratios within one run)."""
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(directory: Path, stem: str, data: dict[str, Any], markdown: str) -> list[Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` in ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{stem}.json"
    markdown_path = directory / f"{stem}.md"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    markdown_path.write_text(markdown, encoding="utf-8")
    return [json_path, markdown_path]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def shown(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def replace_section(path: Path, title: str, body: str) -> None:
    """Replace the section ``## <title>`` of a Markdown document with ``body`` (appended when
    missing), keeping every other section: several benchmarks share docs/performance.md.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     doc = Path(directory) / "performance.md"
    ...     replace_section(doc, "Pipeline", "old\\n")
    ...     replace_section(doc, "Trainer", "kept\\n")
    ...     replace_section(doc, "Pipeline", "new\\n")
    ...     print(doc.read_text())
    # Performance
    <BLANKLINE>
    ## Pipeline
    <BLANKLINE>
    new
    <BLANKLINE>
    ## Trainer
    <BLANKLINE>
    kept
    <BLANKLINE>
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    heading = f"## {title}\n"
    section = f"{heading}\n{body.rstrip()}\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip() + "\n\n" + section
    else:
        following = text.find("\n## ", start + len(heading))
        end = len(text) if following < 0 else following + 1
        text = text[:start] + section + ("\n" + text[end:] if following >= 0 else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def output_options(section: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--output-dir`` and ``--doc`` options every benchmark command takes; ``section``
    says which part of the document the run rewrites."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        function = click.option(
            "--doc",
            type=click.Path(dir_okay=False, path_type=Path),
            default=Path("docs/performance.md"),
            show_default=True,
            help=f"The document in which this run replaces {section}.",
        )(function)
        return click.option(
            "--output-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("bench/results"),
            show_default=True,
            help="Where the JSON, Markdown and PNG results go.",
        )(function)

    return decorate
