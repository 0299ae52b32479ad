"""``streamrec bench configs``: whole configurations side by side, on validation users.

A configuration is ``configured`` (the settings the command runs with), a TOML settings
file such as ``configs/sequential.toml``, or either with settings changed after a ``+``
(``configs/sequential.toml+serving.shortlist_length=200``). Each trains streamrec from
scratch on the training users of the validation split (``benchmarks.validation_users``) and
is measured on the validation users; the test users are never looked at. This is how the
files in ``configs/`` are chosen (docs/model.md, "Defaults per kind of data").

>>> parse_configuration("configured+serving.shortlist_length=400+model.clusters=100").changes
{'serving': {'shortlist_length': 400}, 'model': {'clusters': 100}}
>>> unset = parse_configuration("configs/sequential.toml+serving.pooling_half_life_seconds=none")
>>> unset.file, unset.changes
('configs/sequential.toml', {'serving': {'pooling_half_life_seconds': None}})
>>> parse_configuration("configured+serving.pooling_half_life_seconds")
Traceback (most recent call last):
...
click.exceptions.BadParameter: 'serving.pooling_half_life_seconds' is not SECTION.NAME=VALUE
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from streamrec.benchmarks.results import output_options, publish_run
from streamrec.benchmarks.validation_users import ValidationUsers, validation_options
from streamrec.config import (
    ConfigurationError,
    Settings,
    changed_model_settings,
    load_settings,
    settings_from,
)

CONFIGURED = "configured"
# The value that unsets a setting, e.g. serving.pooling_half_life_seconds=none.
UNSET = "none"


@dataclass(frozen=True)
class Configuration:
    """One entry of ``--configs``: a settings file (None: the command's own settings) and
    the settings changed on top of it, by section."""

    name: str
    file: str | None
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def settings(self, configured: Settings) -> Settings:
        """Raises ConfigurationError naming a wrong file or setting."""
        if self.file is None and not self.changes:
            return configured
        if self.file is None:
            values = configured.model_dump()
            for section, changed in self.changes.items():
                values.setdefault(section, {}).update(changed)
            return settings_from(values)
        return load_settings(self.file, **self.changes)


def parse_configuration(text: str) -> Configuration:
    """``FILE_OR_configured[+SECTION.NAME=VALUE...]``, the value written as in TOML."""
    head, *overrides = [part.strip() for part in text.split("+")]
    changes: dict[str, dict[str, Any]] = {}
    for override in overrides:
        key, equals, value = override.partition("=")
        section, dot, name = key.strip().partition(".")
        if not (equals and dot and section and name):
            raise click.BadParameter(f"{override!r} is not SECTION.NAME=VALUE")
        parsed: Any
        if value.strip() == UNSET:
            parsed = None  # TOML has no null: back to the setting's unset state
        else:
            try:
                parsed = tomllib.loads(f"value = {value.strip()}")["value"]
            except tomllib.TOMLDecodeError:
                parsed = value.strip()  # a bare word: a string setting such as "catalogue"
        changes.setdefault(section, {})[name] = parsed
    return Configuration(text, None if head == CONFIGURED else head, changes)


def measure(
    settings: Settings,
    dataset_name: str,
    protocol: str,
    seed: int,
    configurations: list[tuple[Configuration, Settings]],
    progress: bool,
) -> dict[str, Any]:
    """Each configuration, with the settings it resolved to, trained and scored."""
    users = ValidationUsers.load(settings, dataset_name, protocol, seed)
    rows: dict[str, dict[str, Any]] = {}
    for configuration, resolved in configurations:
        scores, seconds = users.fit_and_score(resolved, seed, progress)
        rows[configuration.name] = {
            "file": configuration.file,
            "changes": configuration.changes,
            # What the row ran with, whatever the file holds later.
            "settings": changed_model_settings(resolved),
            "scores": scores,
            "training_seconds": seconds,
        }
        click.echo(
            f"{configuration.name}: {users.metric} {scores[users.metric]:.4f}, {seconds:.0f} s",
            err=True,
        )
    return {
        "dataset": users.dataset.name,
        "protocol": protocol,
        "seed": seed,
        "metric": users.metric,
        "validation": users.validation.summary(),
        "configurations": rows,
    }


def report_markdown(result: Mapping[str, Any]) -> str:
    from streamrec.benchmarks.results import markdown_table

    metric = result["metric"]
    rows = list(result["configurations"].items())
    first = rows[0][1]["scores"][metric] if rows else 0.0
    other = sorted({name for _, row in rows for name in row["scores"]} - {metric})
    table = [
        [
            name,
            f"{row['scores'][metric]:.4f}",
            f"{row['scores'][metric] - first:+.4f}",
            *(f"{row['scores'].get(key, float('nan')):.4f}" for key in other),
            f"{row['training_seconds']:.0f}",
        ]
        for name, row in rows
    ]
    validation = result["validation"]
    lines = [
        f"{metric} on {validation['test_users']} validation users of {result['dataset']} "
        f"({result['protocol']}, seed {result['seed']}; trained on "
        f"{validation['train_users']} users of the training split, the test users never seen).",
        "",
        markdown_table(
            ["configuration", metric, "vs the first", *other, "training s"],
            table,
        ),
    ]
    return "\n".join(lines) + "\n"


@click.command(name="configs")
@validation_options()
@click.option(
    "--configs",
    "configurations",
    default=CONFIGURED,
    show_default=True,
    help="Comma-separated configurations: 'configured' or a TOML file, each optionally "
    "followed by +SECTION.NAME=VALUE changes ('none' unsets a setting).",
)
@output_options(section="the 'Configurations on <dataset>' section")
@click.pass_obj
def command(
    settings: Settings,
    dataset_name: str,
    protocol: str,
    seed: int,
    threads: int,
    progress: bool,
    configurations: str,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """Train streamrec under each configuration; measure on validation users."""
    import torch
    from threadpoolctl import threadpool_limits

    from streamrec.benchmarks.results import changed_settings, result_stem, run_differences

    chosen = [parse_configuration(text) for text in configurations.split(",") if text.strip()]
    try:  # a wrong file or setting stops the run before any training
        resolved = [(entry, entry.settings(settings)) for entry in chosen]
    except ConfigurationError as error:
        raise click.BadParameter(str(error), param_hint="--configs") from None
    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        result = measure(settings, dataset_name, protocol, seed, resolved, progress)
    differs = run_differences(
        changed_settings(settings),
        leave_out={"dataset_name", "protocol", "seed", "threads", "progress", "configurations"},
    )
    files = "-".join(dict.fromkeys(Path(entry.file or CONFIGURED).stem for entry in chosen))
    # Changed settings would make a long name: a digest of the whole list tells runs apart.
    listed = ",".join(entry.name for entry in chosen).encode()
    digest = (
        f"changes-{hashlib.sha1(listed).hexdigest()[:8]}"
        if any(e.changes for e in chosen)
        else None
    )
    stem = result_stem(
        "configs", result["dataset"], protocol, f"seed{seed}", files, digest, *differs
    )
    publish_run(
        output_dir,
        stem,
        result,
        report_markdown(result),
        doc,
        f"Configurations on {result['dataset']}",
    )
