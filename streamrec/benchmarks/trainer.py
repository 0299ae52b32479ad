"""``streamrec bench trainer``: what a trainer run costs as the stored population grows, how
fast a version is rebuilt, and what a fine-tune gains after a planted drift.

1. **Scale.** For each population size (default 10^4, 10^5, 10^6 users, loaded into a scratch
   PostgreSQL schema by ``population.load_population``), one run's parts are timed: reading the
   sample, the fine-tune, the judging of candidate and active version, and the rebuild of a
   new version over the first ``--rebuild-users`` users (its throughput in users per second).
   The sample is a fixed number of users, so the fine-tune must cost the same at every size.
2. **Drift.** A synthetic stream with planted groups whose items are swapped halfway; the
   active model is trained on the part before the drift, the whole stream is stored, and one
   real trainer run (``TrainingRunService``) fine-tunes it. The run judges the candidate and
   the active version on the same held-out recent users: the gain is the difference.

Results: bench/results/trainer[-<what differs>].{json,md,png} (``streamrec.benchmarks.results``),
and the "Trainer" section of ``--doc`` (docs/performance.md) when given. The machine is shared:
compare ratios within one run, never absolute times across runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from streamrec.benchmarks.results import output_options
from streamrec.config import Settings

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
EVALUATION_USERS = 500
# Events per transaction when the drift stream is stored.
STORE_BATCH = 1_000
DRIFT_SEEDS = (5, 6, 7)


@dataclass(frozen=True)
class ScalePoint:
    users: int
    load_seconds: float
    sample_seconds: float
    fine_tune_seconds: float
    evaluate_seconds: float
    rebuild_users: int
    rebuild_users_per_second: float
    training_users: int
    training_interactions: int


@dataclass(frozen=True)
class DriftGain:
    seed: int
    users: int
    held_out_users: int
    metric: str
    active: float
    candidate: float
    outcome: str

    @property
    def gain(self) -> float:
        return self.candidate - self.active


def measure_scale(
    settings: Settings, users: int, *, interactions_per_user: int, items: int, rebuild_users: int
) -> ScalePoint:
    """One population size, in a scratch schema of the configured PostgreSQL."""
    import numpy as np

    from streamrec.benchmarks.population import load_population
    from streamrec.benchmarks.stack import new_run_id, scratch_database
    from streamrec.model.efficientrec import EfficientRec
    from streamrec.model.features import FeatureSchema
    from streamrec.services.rebuild import VersionRebuilder
    from streamrec.services.training_data import TrainingSampler
    from streamrec.services.training_run import evaluate, fine_tune_candidate
    from streamrec.state import ModelStatus, ModelVersion
    from streamrec.storage import create_database_engine
    from streamrec.storage.unit_of_work import UnitOfWork

    with scratch_database(settings, f"trainer_{new_run_id()}") as scratch:
        engine = create_database_engine(scratch.effective_database_url, timeouts=scratch.timeouts)
        try:
            active = EfficientRec.new(scratch.model, FeatureSchema(), seed=0)
            config, weights = active.to_version()
            with UnitOfWork(engine) as uow:
                version = uow.models.add(ModelVersion(None, ModelStatus.ACTIVE, config, weights))
                uow.commit()
            load = load_population(
                engine,
                version,
                scratch,
                users=users,
                interactions_per_user=interactions_per_user,
                items=items,
                now=time.time(),
            )
            sampler = TrainingSampler(
                engine,
                training_users=16 * scratch.training.users_per_step,
                evaluation_users=EVALUATION_USERS,
            )
            started = time.perf_counter()
            sample = sampler.sample(np.random.default_rng(0))
            sample_seconds = time.perf_counter() - started
            # One step first: torch's first calls allocate and pick kernels.
            warm_up = scratch.model_copy(
                update={"training": scratch.training.model_copy(update={"fine_tune_steps": 1})}
            )
            fine_tune_candidate(active, sample, warm_up, seed=1)
            started = time.perf_counter()
            candidate, _ = fine_tune_candidate(active, sample, scratch, seed=1)
            fine_tune_seconds = time.perf_counter() - started
            started = time.perf_counter()
            evaluate(candidate, sample, scratch)
            evaluate(active, sample, scratch)
            evaluate_seconds = time.perf_counter() - started
            config, weights = candidate.to_version()
            with UnitOfWork(engine) as uow:
                building = uow.models.add(ModelVersion(None, ModelStatus.BUILDING, config, weights))
                uow.commit()
            report = VersionRebuilder(scratch, engine).rebuild(building, max_users=rebuild_users)
        finally:
            engine.dispose()
    return ScalePoint(
        users=users,
        load_seconds=load.seconds,
        sample_seconds=sample_seconds,
        fine_tune_seconds=fine_tune_seconds,
        evaluate_seconds=evaluate_seconds,
        rebuild_users=report.users_done,
        rebuild_users_per_second=report.users_per_second,
        training_users=len(sample.training_user_ids),
        training_interactions=sample.interactions,
    )


def measure_drift_gain(
    settings: Settings, users: int, pretraining_steps: int, seed: int
) -> DriftGain:
    """One real trainer run after a planted drift; the candidate's and the active version's
    precision on the same held-out users."""
    from streamrec.benchmarks.stack import new_run_id, scratch_database
    from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream
    from streamrec.model.efficientrec import EfficientRec
    from streamrec.model.features import FeatureSchema
    from streamrec.model.interaction_table import InteractionTable
    from streamrec.model.training.sampler import InMemoryUserSampler
    from streamrec.model.training.trainer import train
    from streamrec.services.training_run import RunRequest, TrainingRunService, precision_key
    from streamrec.state import Interaction, ModelStatus, ModelVersion
    from streamrec.storage import create_database_engine
    from streamrec.storage.records import TrainingTrigger
    from streamrec.storage.unit_of_work import UnitOfWork

    stream = SyntheticStream(
        SyntheticConfig(
            users=users,
            items=1_000,
            groups=20,
            items_per_group=25,
            users_per_block=max(1, users // 10),
            drift_at=0.5,
            drift_share=0.8,
            seed=seed,
        )
    )
    table = stream.to_dataset().table
    drift_time = stream.drift_time
    assert drift_time is not None
    before: InteractionTable = table.subset(table.timestamps < drift_time)
    model = EfficientRec.new(settings.model, FeatureSchema(), seed=0)
    train(
        model,
        InMemoryUserSampler(before),
        {},
        settings.training,
        steps=pretraining_steps,
    )
    # Any candidate is promoted: the point is its score beside the active version's.
    judged = settings.model_copy(
        update={"trainer": settings.trainer.model_copy(update={"promotion_tolerance": 1.0})}
    )
    with scratch_database(judged, f"trainer_drift_{new_run_id()}") as scratch:
        engine = create_database_engine(scratch.effective_database_url, timeouts=scratch.timeouts)
        try:
            config, weights = model.to_version()
            with UnitOfWork(engine) as uow:
                uow.models.add(
                    ModelVersion(None, ModelStatus.ACTIVE, config, weights, created_at=0.0)
                )
                uow.commit()
            # Written as consumers would have: in time order, each batch stamped with the
            # time of its last event, so the most recently active users are the latest ones.
            for start in range(0, len(table), STORE_BATCH):
                rows = range(start, min(start + STORE_BATCH, len(table)))
                written_at = float(table.timestamps[rows[-1]])
                with UnitOfWork(engine, clock=lambda at=written_at: at) as uow:
                    uow.interactions.save_many(
                        Interaction(
                            table.user_vocabulary[table.users[row]],
                            table.item_vocabulary[table.items[row]],
                            float(table.weights[row]),
                            f"e{row}",
                            "rating",
                            float(table.timestamps[row]),
                        )
                        for row in rows
                    )
                    uow.commit()
            result = TrainingRunService(scratch, engine).run(
                RunRequest(TrainingTrigger.OPERATOR, "bench trainer: after a planted drift")
            )
        finally:
            engine.dispose()
    key = precision_key(settings)
    return DriftGain(
        seed=seed,
        users=users,
        held_out_users=int(result.metrics["candidate"]["held_out_users"]),
        metric=key,
        active=float(result.metrics["active"][key]),
        candidate=float(result.metrics["candidate"][key]),
        outcome=result.outcome.value,
    )


def markdown(points: Sequence[ScalePoint], drifts: Sequence[DriftGain], steps: int) -> str:
    from streamrec.benchmarks.results import markdown_table, shown

    smallest = points[0] if points else None
    rows = [
        [
            f"{point.users:,}",
            shown(point.sample_seconds, 2),
            shown(point.fine_tune_seconds, 2),
            shown(point.fine_tune_seconds / smallest.fine_tune_seconds, 2) if smallest else "-",
            shown(point.evaluate_seconds, 2),
            f"{point.rebuild_users_per_second:,.0f}",
            shown(point.load_seconds, 1),
        ]
        for point in points
    ]
    text = (
        f"## Trainer: cost of a run as users grow ({steps} fine-tune steps)\n\n"
        + markdown_table(
            [
                "stored users",
                "sample s",
                "fine-tune s",
                "fine-tune vs smallest",
                "judge s",
                "rebuild users/s",
                "population load s",
            ],
            rows,
        )
    )
    if drifts:
        first = drifts[0]
        rows = [
            [
                str(drift.seed),
                str(drift.held_out_users),
                shown(drift.active),
                shown(drift.candidate),
                f"{drift.gain:+.3f}",
                drift.outcome,
            ]
            for drift in drifts
        ]
        mean_gain = sum(drift.gain for drift in drifts) / len(drifts)
        rows.append(["mean", "", "", "", f"{mean_gain:+.3f}", ""])
        text += (
            f"\n## Trainer: a fine-tune after a planted drift ({first.users:,} users, "
            "held-out users are the most recent ones)\n\n"
            + markdown_table(
                [
                    "stream seed",
                    "held-out users",
                    first.metric + " active",
                    "candidate",
                    "gain",
                    "outcome",
                ],
                rows,
            )
        )
    return text


def plot(points: Sequence[ScalePoint], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    users = [point.users for point in points]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(users, [point.fine_tune_seconds for point in points], marker="o", label="fine-tune")
    left.plot(users, [point.sample_seconds for point in points], marker="o", label="sample")
    left.plot(users, [point.evaluate_seconds for point in points], marker="o", label="judge")
    left.set_xscale("log")
    left.set_xlabel("stored users")
    left.set_ylabel("seconds")
    left.set_ylim(bottom=0)
    left.set_title("a run's parts: flat as users grow")
    left.legend()
    right.plot(users, [point.rebuild_users_per_second for point in points], marker="o")
    right.set_xscale("log")
    right.set_xlabel("stored users")
    right.set_ylabel("users per second")
    right.set_ylim(bottom=0)
    right.set_title("rebuild throughput")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


@click.command(name="trainer")
@click.option(
    "--sizes",
    default=",".join(str(size) for size in DEFAULT_SIZES),
    show_default=True,
    help="Comma-separated population sizes (stored users).",
)
@click.option(
    "--steps", type=click.IntRange(min=1), default=50, show_default=True, help="Fine-tune steps."
)
@click.option("--interactions-per-user", type=click.IntRange(min=2), default=8, show_default=True)
@click.option("--items", type=click.IntRange(min=10), default=5_000, show_default=True)
@click.option("--rebuild-users", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option(
    "--drift-users",
    type=click.IntRange(min=0),
    default=3_000,
    show_default=True,
    help="Users of the drift stream; 0 skips the drift part.",
)
@click.option("--pretraining-steps", type=click.IntRange(min=1), default=300, show_default=True)
@output_options(section="the 'Trainer' section")
@click.pass_obj
def command(
    settings: Settings,
    sizes: str,
    steps: int,
    interactions_per_user: int,
    items: int,
    rebuild_users: int,
    drift_users: int,
    pretraining_steps: int,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """Fine-tune cost and rebuild throughput at growing populations; gain after a drift."""
    import torch
    from sqlalchemy.engine import make_url

    from streamrec.benchmarks.results import (
        changed_settings,
        machine_description,
        replace_section,
        result_stem,
        run_differences,
        write_results,
    )
    from streamrec.errors import UserFacingError

    stem = result_stem("trainer", *run_differences(changed_settings(settings)))

    torch.set_num_threads(1)
    if settings.database_url is None or (
        make_url(settings.database_url.get_secret_value()).get_backend_name() != "postgresql"
    ):
        raise UserFacingError(
            "bench trainer loads populations with PostgreSQL: set STREAMREC_DATABASE_URL to a "
            "postgresql+psycopg:// URL (the runs use scratch schemas, dropped afterwards)"
        )
    try:
        population_sizes = sorted({int(size) for size in sizes.split(",") if size.strip()})
    except ValueError:
        raise click.BadParameter(f"--sizes: expected numbers, got {sizes!r}") from None
    if not population_sizes or population_sizes[0] < 1_000:
        raise click.BadParameter("--sizes: each size must be at least 1000 users")
    measured = settings.model_copy(
        update={"training": settings.training.model_copy(update={"fine_tune_steps": steps})}
    )
    points: list[ScalePoint] = []
    for users in population_sizes:
        click.echo(f"population of {users:,} users ...")
        point = measure_scale(
            measured,
            users,
            interactions_per_user=interactions_per_user,
            items=items,
            rebuild_users=rebuild_users,
        )
        click.echo(
            f"  sample {point.sample_seconds:.2f} s, fine-tune {point.fine_tune_seconds:.2f} s, "
            f"judge {point.evaluate_seconds:.2f} s, rebuild {point.rebuild_users_per_second:,.0f} "
            f"users/s (load {point.load_seconds:.0f} s)"
        )
        points.append(point)
    drifts: list[DriftGain] = []
    for seed in DRIFT_SEEDS if drift_users else ():
        click.echo(f"a fine-tune after a planted drift ({drift_users:,} users, seed {seed}) ...")
        drift = measure_drift_gain(measured, drift_users, pretraining_steps, seed)
        click.echo(f"  {drift.metric}: active {drift.active:.3f}, candidate {drift.candidate:.3f}")
        drifts.append(drift)
    table = markdown(points, drifts, steps)
    data: dict[str, Any] = {
        "benchmark": "trainer",
        "fine_tune_steps": steps,
        "users_per_step": measured.training.users_per_step,
        "interactions_per_user": interactions_per_user,
        "items": items,
        "scale": [asdict(point) for point in points],
        "drift": [{**asdict(drift), "gain": drift.gain} for drift in drifts],
        "model": measured.model.model_dump(),
        "serving": measured.serving.model_dump(),
        "machine": machine_description(),
    }
    paths = write_results(output_dir, stem, data, table)
    paths.append(plot(points, output_dir / f"{stem}.png"))
    if doc is not None:
        title = "Trainer" if stem == "trainer" else f"Trainer ({stem.removeprefix('trainer-')})"
        replace_section(doc, title, trainer_section(table, output_dir, stem))
        paths.append(doc)
    click.echo(table)
    click.echo("written: " + ", ".join(str(path) for path in paths))


def trainer_section(table: str, output_dir: Path, stem: str = "trainer") -> str:
    """The 'Trainer' section of docs/performance.md for one run's tables."""
    # The tables carry their own '## ' headings; inside the section they become '### '.
    body = table.replace("\n## ", "\n### ").removeprefix("## ")
    return (
        "Measured by `streamrec bench trainer` (PostgreSQL, synthetic users); raw numbers in "
        f"{output_dir.as_posix()}/{stem}.json. Targets: fine-tune time flat as users "
        "grow (it samples), rebuild throughput reported, quality gained after a planted drift."
        f"\n\n### {body}\n![{stem}](../{output_dir.as_posix()}/{stem}.png)\n"
    )
