"""Where benchmark results go: JSON (everything) and Markdown (the table) under bench/results/,
named by what differs between runs: the benchmark, its dataset and sizes, every option given a
value other than its default (``options_that_differ``) and the settings that change what is
measured (``settings_that_differ``: a config file's stem, or the changed settings themselves).
Runs of different configurations never overwrite each other; a rerun of the same one
replaces its files. A document (docs/performance.md) is written only when ``--doc`` names it.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as directory:
...     paths = write_results(Path(directory), "demo", {"a": 1}, "| a |\\n|---|\\n| 1 |\\n")
...     [path.name for path in paths]
['demo.json', 'demo.md']
>>> markdown_table(["method", "HR"], [["popularity", "0.120"]])
'| method | HR |\\n|---|---|\\n| popularity | 0.120 |\\n'
>>> result_stem("prequential", "ml-latest-small", None, "batch50", "training-steps20")
'prequential-ml-latest-small-batch50-training-steps20'
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import time
import tomllib
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from streamrec.config import Settings, changed_model_settings

DEFAULT_RESULTS_DIRECTORY = Path("bench/results")


def safe_stem(text: str) -> str:
    """A file-name-safe version of ``text`` (dataset paths become their last part)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(text).name or text).strip("-") or "run"


def result_stem(*parts: str | None) -> str:
    """The file stem of a run: ``parts`` made file-name safe and joined by ``-``, the empty
    ones left out."""
    return "-".join(safe_stem(part) for part in parts if part)


def options_that_differ(ctx: click.Context, leave_out: Collection[str] = ()) -> list[str]:
    """One stem part per option of the running command whose value is not its default, in
    the order the command declares them: ``training-steps50``, ``train-share0.3``,
    ``populations500-2000``, ``methods-ease-als``, ``no-baselines``. ``leave_out`` names the
    options (by parameter name) that the stem already says otherwise, or that change nothing
    measured, such as where the files go.

    >>> @click.command()
    ... @click.option("--steps", type=int, default=150)
    ... @click.option("--no-baselines", is_flag=True)
    ... @click.option("--output-dir", default="bench/results")
    ... def run(steps: int, no_baselines: bool, output_dir: str) -> None:
    ...     print(options_that_differ(click.get_current_context(), {"output_dir"}))
    >>> run(["--steps", "20", "--no-baselines", "--output-dir", "x"], standalone_mode=False)
    ['steps20', 'no-baselines']
    >>> run(["--steps", "150"], standalone_mode=False)
    []
    """
    parts = []
    for parameter in ctx.command.params:
        name = parameter.name
        if not isinstance(parameter, click.Option) or name is None or name in leave_out:
            continue
        if not parameter.expose_value or name not in ctx.params:
            continue
        value = ctx.params[name]
        if value == _default_value(ctx, parameter):
            continue
        parts.append(_option_part(parameter, value))
    return parts


def run_differences(changed: Mapping[str, Any], leave_out: Collection[str] = ()) -> list[str]:
    """The stem parts of the running command after its name: its options that are not their
    default (``options_that_differ``; ``--output-dir``, ``--doc`` and ``leave_out`` left
    out), then the ``changed`` settings (``settings_that_differ``, the config file in use
    named when it gives them)."""
    leave_out = {"output_dir", "doc", *leave_out}
    options = options_that_differ(click.get_current_context(), leave_out)
    return options + settings_that_differ(changed, config_file_in_use())


def _default_value(ctx: click.Context, option: click.Option) -> Any:
    """The value the option takes when not given, converted and passed through its callback
    like a given one (``--populations`` turns "10000,1000000" into a sorted list)."""
    try:
        return option.process_value(ctx, option.get_default(ctx))
    except click.ClickException:
        return None


def _option_part(option: click.Option, value: Any) -> str:
    flag = max(option.opts, key=len).lstrip("-")
    if isinstance(value, bool):
        if value:
            return flag
        negative = max(option.secondary_opts, key=len, default=f"--no-{flag}")
        return negative.lstrip("-")
    values = value if isinstance(value, list | tuple) else [value]
    shown = "-".join(_value_text(item) for item in values)
    # Numbers read well attached (steps20); words need a separator (methods-ease-als).
    numeric = all(isinstance(item, int | float) for item in values)
    return f"{flag}{shown}" if numeric else f"{flag}-{shown}"


def _value_text(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-")


# Up to this many changed settings are named one by one in a stem; more become a digest.
NAMED_SETTINGS_IN_STEM = 2


def settings_that_differ(
    changed: Mapping[str, Any], config_file: str | Path | None = None
) -> list[str]:
    """Stem parts for the settings of a run that differ from the defaults (``changed``, by
    dotted name, e.g. ``streamrec.config.changed_model_settings``): ``config-<stem>`` when
    the config file gives some of them, then the others by name and value, or, when there
    are more than NAMED_SETTINGS_IN_STEM, ``settings-<digest>`` (the JSON lists them all).

    >>> settings_that_differ({})
    []
    >>> settings_that_differ({"model.clusters": 100})
    ['model.clusters100']
    >>> settings_that_differ({"model.clusters": 100, "serving.rerank": False, "model.item_dim": 8})
    ['settings-92dfda01']
    """
    from_file = _settings_in_file(config_file) if config_file else {}
    explained = {name for name, value in changed.items() if from_file.get(name, _MISSING) == value}
    parts = [f"config-{safe_stem(Path(config_file).stem)}"] if explained and config_file else []
    others = {name: value for name, value in changed.items() if name not in explained}
    if len(others) > NAMED_SETTINGS_IN_STEM:
        listed = json.dumps(others, sort_keys=True, default=str).encode()
        parts.append(f"settings-{hashlib.sha256(listed).hexdigest()[:8]}")
    else:
        parts += [f"{name}{_value_text(value)}" for name, value in sorted(others.items())]
    return parts


_MISSING = object()


def changed_settings(settings: Settings, also: Sequence[str] = ()) -> dict[str, Any]:
    """The model and training settings that differ from the defaults, and those of ``also``
    (dotted names such as ``kafka.partitions``) that do: what changes a measurement.

    >>> changed_settings(Settings(kafka={"partitions": 8}, model={"clusters": 9}),
    ...                  also=["kafka.partitions", "kafka.max_poll_records"])
    {'model.clusters': 9, 'kafka.partitions': 8}
    """
    changed = changed_model_settings(settings)
    defaults = Settings.model_construct()
    for name in also:
        section, _, key = name.partition(".")
        value = getattr(getattr(settings, section), key)
        if value != getattr(getattr(defaults, section), key):
            changed[name] = value
    return changed


def _settings_in_file(config_file: str | Path) -> dict[str, Any]:
    """The settings a TOML file sets, by dotted name; empty if it cannot be read (the
    settings were loaded from it already, so that is a file changed since)."""
    try:
        values = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    flat: dict[str, Any] = {}

    def walk(prefix: str, section: Mapping[str, Any]) -> None:
        for key, value in section.items():
            if isinstance(value, Mapping):
                walk(f"{prefix}{key}.", value)
            else:
                flat[f"{prefix}{key}"] = value

    walk("", values)
    return flat


def config_file_in_use(ctx: click.Context | None = None) -> str | None:
    """The TOML settings file the running command loaded its settings from, if any: the
    ``--config`` option, before or after the subcommand, else ``$STREAMREC_CONFIG_FILE``."""
    from streamrec.cli.main import CONFIG_FILE_META_KEY

    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return None
    return ctx.meta.get(CONFIG_FILE_META_KEY)


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


def publish_run(
    output_dir: Path,
    stem: str,
    data: dict[str, Any],
    markdown: str,
    doc: Path | None,
    section: str,
    also_written: Sequence[Path] = (),
) -> None:
    """The end of a benchmark command: print the report, write ``<stem>.json`` (with the
    machine) and ``<stem>.md``, replace the ``section`` of ``doc`` when one is given, and
    say what was written (``also_written``: files the benchmark wrote itself, a plot)."""
    click.echo(markdown)
    written = write_results(output_dir, stem, data | {"machine": machine_description()}, markdown)
    written += list(also_written)
    if doc is not None:
        replace_section(doc, section, markdown)
        written.append(doc)
    for path in written:
        click.echo(f"wrote {path}", err=True)


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
    says which part of the document the run rewrites. Without ``--doc`` no document is
    touched: a run on a laptop must not rewrite the measured pages by default."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        function = click.option(
            "--doc",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help=f"Also replace {section} of this Markdown document with the run "
            "(e.g. docs/performance.md); without it no document is written.",
        )(function)
        return click.option(
            "--output-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("bench/results"),
            show_default=True,
            help="Where the JSON, Markdown and PNG results go.",
        )(function)

    return decorate
