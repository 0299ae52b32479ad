"""One trainer run: sample, fine-tune, evaluate the candidate against the active version,
register it, and promote it (rebuild, then flip) or record why not.

A run holds the database run lock from start to end, so runs never overlap, across
processes and machines. It is recorded in ``training_runs`` whatever happens: its trigger,
start, end, outcome (``promoted``, ``rejected``, ``skipped``, ``failed``), the reason and the
metrics. The active version is only ever changed by one atomic ``activate`` at the very end,
after the candidate's state is complete; a crash anywhere before leaves it serving, intact.

- **Skip**: without an active version, or with fewer than settings.trainer.min_new_events
  interactions written since the data window of the last trained candidate (``force``
  overrides the minimum).
- **Resume**: if a version is still BUILDING (a run or a switch was killed mid-rebuild), the
  run finishes that rebuild and activates it instead of training.
- **Promotion guard**: the candidate and the active version are each given statistics built
  from the same training sample and scored on the same held-out users (precision at N,
  cold-users protocol); the candidate is promoted only if its precision is not below the
  active version's minus settings.trainer.promotion_tolerance.

>>> RunOutcome.PROMOTED.value, RunStage.REBUILDING.value
('promoted', 'rebuilding')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.evaluation.metrics import ndcg_at, precision_at, recall_at
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.table_replay import EfficientRecRecommender
from streamrec.model.training.sampler import InMemoryUserSampler
from streamrec.model.training.trainer import fine_tune
from streamrec.services.rebuild import (
    ChunkObserver,
    RebuildReport,
    VersionRebuilder,
    discard_derived_state,
)
from streamrec.services.run_lock import RunLock, create_run_lock
from streamrec.services.training_data import TrainingSample, TrainingSampler
from streamrec.state import ModelStatus, ModelVersion
from streamrec.storage.records import TrainingTrigger
from streamrec.storage.trainer import RebuildProgress
from streamrec.storage.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

# Users per training sample, as a multiple of users_per_step: enough distinct users that a
# fine-tune's steps do not see the same few again and again, and a fixed cost per run.
SAMPLE_USERS_PER_STEP_USERS = 16
EVALUATION_USERS = 500
# Interactions written this close before a version was retired may not have reached it.
CLOCK_SKEW_SECONDS = 5.0


class RunOutcome(StrEnum):
    PROMOTED = "promoted"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    FAILED = "failed"
    # Recorded for a run found unfinished (its process died) by the next one.
    INTERRUPTED = "interrupted"


class RunStage(StrEnum):
    """Points of a run reported to ``RunHooks.on_stage`` (with a chunk number while
    rebuilding, else 0)."""

    LOCKED = "locked"
    SAMPLED = "sampled"
    TRAINED = "trained"
    REGISTERED = "registered"
    REBUILDING = "rebuilding"
    ACTIVATED = "activated"


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What starts a run: its trigger, a line saying why (an operator's note, the drift
    detector's finding), the operator request it answers, and whether to ignore the
    minimum of new data."""

    trigger: TrainingTrigger
    detail: str | None = None
    request_id: str | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: int
    outcome: RunOutcome
    reason: str
    candidate_version: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RunHooks:
    """Observers of a run, each optional: its start (run id and request), stages, rebuild
    progress, and the flip (new version, previous version), e.g. to announce it on the
    control topic."""

    on_started: Callable[[int, RunRequest], None] | None = None
    on_stage: Callable[[RunStage, int], None] | None = None
    on_rebuild_progress: Callable[[RebuildProgress], None] | None = None
    on_activated: Callable[[int, int | None], None] | None = None


class CandidateTrainer(Protocol):
    def __call__(
        self, active: EfficientRec, sample: TrainingSample, settings: Settings, seed: int
    ) -> tuple[EfficientRec, dict[str, Any]]:
        """A candidate trained from ``active`` on ``sample`` (``active`` is left as it is),
        and a report of the training as plain data."""


def fine_tune_candidate(
    active: EfficientRec, sample: TrainingSample, settings: Settings, seed: int
) -> tuple[EfficientRec, dict[str, Any]]:
    """The triplet-loss fine-tune of the model issue, on the run's sample."""
    sampler = InMemoryUserSampler(
        sample.table, sample.attributes, settings.training.max_interactions_per_user
    )
    candidate, report = fine_tune(
        active,
        sampler,
        sample.items,
        settings.training.model_copy(update={"seed": seed}),
        top_memberships=settings.serving.top_memberships,
    )
    candidate.date_statistics(sample.table.timestamps)
    return candidate, report.to_dict()


class TrainingRunService:
    """Runs trainer runs against one database. ``lock`` defaults to the database's run
    lock; ``candidate_trainer`` to ``fine_tune_candidate`` (tests give a worse one)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        lock: RunLock | None = None,
        candidate_trainer: CandidateTrainer = fine_tune_candidate,
        hooks: RunHooks | None = None,
        clock: Callable[[], float] = time.time,
        training_users: int | None = None,
        evaluation_users: int = EVALUATION_USERS,
        rebuild_chunk_users: int | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._lock = lock or create_run_lock(engine)
        self._candidate_trainer = candidate_trainer
        self.hooks = hooks or RunHooks()
        self._clock = clock
        self._sampler = TrainingSampler(
            engine,
            training_users=training_users
            or SAMPLE_USERS_PER_STEP_USERS * settings.training.users_per_step,
            evaluation_users=evaluation_users,
            clock=clock,
        )
        self._rebuilder = VersionRebuilder(
            settings, engine, chunk_users=rebuild_chunk_users, clock=clock
        )

    @property
    def lock(self) -> RunLock:
        return self._lock

    def run(self, request: RunRequest) -> RunResult:
        """One run, recorded from start to end. Never raises for a failure of the run itself:
        it is recorded as ``failed`` with the reason (the process goes on to the next run)."""
        if not self._lock.acquire():
            holder = self._lock.holder() or "another trainer"
            return self._record_at_once(
                request, RunOutcome.SKIPPED, f"another run is in progress (lock held by {holder})"
            )
        try:
            self._report(RunStage.LOCKED)
            run_id = self._start(request)
            metrics = _request_metrics(request)
            try:
                if self.hooks.on_started is not None:
                    self.hooks.on_started(run_id, request)
                result = self._run_locked(run_id, request, metrics)
            except Exception as error:
                logger.exception("training run %d failed", run_id)
                result = RunResult(run_id, RunOutcome.FAILED, _describe(error), metrics=metrics)
            self._finish(result)
            return result
        finally:
            self._lock.release()

    def switch_to(self, version: int, reason: str) -> RebuildReport | None:
        """Make ``version`` the active one without training (``streamrec models promote`` and
        ``rollback``), holding the run lock. A retired version whose state is still current
        is flipped back at once; any other is rebuilt first (its stale state discarded).
        Returns the rebuild's report, or None when no rebuild was needed."""
        if not self._lock.acquire():
            holder = self._lock.holder() or "another trainer"
            raise SwitchRefusedError(f"a run is in progress (lock held by {holder}); try later")
        try:
            return self._switch_locked(version, reason)
        finally:
            self._lock.release()

    # The run, under the lock --------------------------------------------------------------

    def _run_locked(self, run_id: int, request: RunRequest, metrics: dict[str, Any]) -> RunResult:
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            active = uow.models.active()
            building = uow.builds.building_version()
            versions = uow.models.list()
        if building is not None:
            report = self._rebuild_and_activate(building, "finished the interrupted rebuild")
            metrics["rebuild"] = _rebuild_metrics(report)
            return RunResult(
                run_id,
                RunOutcome.PROMOTED,
                f"resumed the interrupted rebuild of version {building} and activated it",
                building,
                metrics,
            )
        if active is None or active.version is None:
            return RunResult(
                run_id,
                RunOutcome.SKIPPED,
                "no active model version: train a first one (`streamrec train`)",
                metrics=metrics,
            )
        since = last_training_watermark(versions, active)
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            new_interactions = uow.interactions.count(updated_after=since)
        metrics["new_interactions"] = new_interactions
        minimum = self._settings.trainer.min_new_events
        if new_interactions < minimum and not request.force:
            return RunResult(
                run_id,
                RunOutcome.SKIPPED,
                f"only {new_interactions} new interactions since the last trained data "
                f"(minimum {minimum})",
                metrics=metrics,
            )
        return self._train_and_judge(run_id, active, metrics)

    def _train_and_judge(
        self, run_id: int, active: ModelVersion, metrics: dict[str, Any]
    ) -> RunResult:
        assert active.version is not None
        generator = np.random.default_rng((self._settings.training.seed, run_id))
        timings: dict[str, float] = {}
        started = time.perf_counter()
        sample = self._sampler.sample(generator)
        timings["sample"] = time.perf_counter() - started
        metrics["sample"] = sample.window
        self._report(RunStage.SAMPLED)
        if len(sample.training_user_ids) < 4 or not sample.held_out:
            metrics["seconds"] = timings
            return RunResult(
                run_id,
                RunOutcome.SKIPPED,
                f"too few users to train and judge a candidate "
                f"({len(sample.training_user_ids)} training, {len(sample.held_out)} held out)",
                metrics=metrics,
            )
        active_model = EfficientRec.from_version(active.config, active.weights)
        started = time.perf_counter()
        candidate, training_report = self._candidate_trainer(
            active_model, sample, self._settings, seed=run_id
        )
        timings["fine_tune"] = time.perf_counter() - started
        metrics["training"] = training_report
        self._report(RunStage.TRAINED)

        started = time.perf_counter()
        candidate_scores = evaluate(candidate, sample, self._settings)
        active_scores = evaluate(active_model, sample, self._settings)
        timings["evaluate"] = time.perf_counter() - started
        metrics["candidate"], metrics["active"] = candidate_scores, active_scores
        key = precision_key(self._settings)
        tolerance = self._settings.trainer.promotion_tolerance
        worse = candidate_scores[key] < active_scores[key] - tolerance
        config, weights = candidate.to_version()
        # The candidate's statistics are built from scratch when it is switched in, so it
        # takes the configured rounding whatever the active version used.
        config["statistics_membership_precision"] = (
            self._settings.model.statistics_membership_precision
        )
        verdict = (
            f"{key} {candidate_scores[key]:.4f} vs active version {active.version}'s "
            f"{active_scores[key]:.4f} on {len(sample.held_out)} held-out users "
            f"(tolerance {tolerance})"
        )
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            version = uow.models.add(
                ModelVersion(
                    None,
                    ModelStatus.REJECTED if worse else ModelStatus.BUILDING,
                    config,
                    weights,
                    metrics={**candidate_scores, "active": active_scores, "run_id": run_id},
                    parent_version=active.version,
                    data_window=sample.window,
                    reason=f"worse than active: {verdict}" if worse else None,
                )
            )
            uow.commit()
        self._report(RunStage.REGISTERED)
        if worse:
            metrics["seconds"] = timings
            return RunResult(
                run_id, RunOutcome.REJECTED, f"worse than active: {verdict}", version, metrics
            )
        report = self._rebuild_and_activate(version, f"promoted by run {run_id}: {verdict}")
        timings["rebuild"] = report.seconds
        metrics["rebuild"] = _rebuild_metrics(report)
        metrics["seconds"] = timings
        return RunResult(run_id, RunOutcome.PROMOTED, f"promoted: {verdict}", version, metrics)

    def _rebuild_and_activate(self, version: int, reason: str) -> RebuildReport:
        def on_chunk(chunk: int, progress: RebuildProgress) -> None:
            if self.hooks.on_rebuild_progress is not None:
                self.hooks.on_rebuild_progress(progress)
            self._report(RunStage.REBUILDING, chunk)

        observer: ChunkObserver = on_chunk
        report = self._rebuilder.rebuild(version, observer)
        if not self._lock.still_held():
            raise SwitchRefusedError(
                f"lost the run lock while rebuilding version {version}; it stays building"
            )
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            previous = uow.models.activate(version, reason)
            uow.commit()
        logger.info("activated model version %d (was %s): %s", version, previous, reason)
        self._report(RunStage.ACTIVATED)
        if self.hooks.on_activated is not None:
            self.hooks.on_activated(version, previous)
        return report

    def _switch_locked(self, version: int, reason: str) -> RebuildReport | None:
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            target = uow.models.get(version)
            if target is None:
                raise SwitchRefusedError(f"model version {version} is not registered")
            if target.status is ModelStatus.ACTIVE:
                raise SwitchRefusedError(f"model version {version} is already active")
            building = uow.builds.building_version()
            if building is not None and building != version:
                raise SwitchRefusedError(
                    f"version {building} is being rebuilt; let it finish "
                    "(`streamrec train now --force`) first"
                )
            if target.status is ModelStatus.RETIRED and self._still_current(uow, target):
                previous = uow.models.activate(version, reason)
                uow.commit()
                logger.info("reactivated model version %d (was %s)", version, previous)
                if self.hooks.on_activated is not None:
                    self.hooks.on_activated(version, previous)
                return None
            if target.status is not ModelStatus.BUILDING:
                # Whatever state it has is stale: start from nothing, consumers included.
                discard_derived_state(uow, version)
                uow.models.set_status(version, ModelStatus.BUILDING, reason)
                uow.commit()
        return self._rebuild_and_activate(version, reason)

    def _still_current(self, uow: UnitOfWork, target: ModelVersion) -> bool:
        """Whether a retired version's state is what it would be now: no interaction was
        written since it was retired (the next activation after its last one)."""
        if target.promoted_at is None:
            return False
        later = [
            model.promoted_at
            for model in uow.models.list()
            if model.promoted_at is not None and model.promoted_at > target.promoted_at
        ]
        if not later:
            return False
        retired_at = min(later)
        return uow.interactions.count(updated_after=retired_at - CLOCK_SKEW_SECONDS) == 0

    # Recording ----------------------------------------------------------------------------

    def _start(self, request: RunRequest) -> int:
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            _close_interrupted_runs(uow)
            run_id = uow.training_runs.start(
                request.trigger, parent_version=uow.models.active_version()
            )
            uow.commit()
        logger.info("training run %d started (%s)", run_id, request.trigger.value)
        return run_id

    def _finish(self, result: RunResult) -> None:
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            uow.training_runs.finish(
                result.run_id,
                result.outcome.value,
                reason=result.reason,
                metrics=result.metrics,
                candidate_version=result.candidate_version,
            )
            uow.commit()
        logger.info("training run %d %s: %s", result.run_id, result.outcome.value, result.reason)

    def _record_at_once(self, request: RunRequest, outcome: RunOutcome, reason: str) -> RunResult:
        metrics = _request_metrics(request)
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            run_id = uow.training_runs.start(request.trigger)
            uow.training_runs.finish(run_id, outcome.value, reason=reason, metrics=metrics)
            uow.commit()
        logger.info("training run %d %s: %s", run_id, outcome.value, reason)
        return RunResult(run_id, outcome, reason, metrics=metrics)

    def _report(self, stage: RunStage, number: int = 0) -> None:
        if self.hooks.on_stage is not None:
            self.hooks.on_stage(stage, number)


class SwitchRefusedError(Exception):
    """A version switch that cannot happen now; the message says why."""


def evaluate(model: EfficientRec, sample: TrainingSample, settings: Settings) -> dict[str, float]:
    """Precision, recall and NDCG at N of ``model`` on the sample's held-out users, with
    cluster statistics built from the sample's training users (the same for every model
    judged on this sample)."""
    recommender = EfficientRecRecommender(
        settings.model, settings.serving, settings.training, model=model
    )
    recommender.fit(sample.table, sample.items, sample.attributes)
    count = settings.serving.recommendations
    recommended = recommender.recommend_many([case.history for case in sample.held_out], count)
    relevant = [set(case.held_out) for case in sample.held_out]
    return {
        precision_key(settings): _mean(precision_at, recommended, relevant, count),
        f"recall_at_{count}": _mean(recall_at, recommended, relevant, count),
        f"ndcg_at_{count}": _mean(ndcg_at, recommended, relevant, count),
        "held_out_users": float(len(sample.held_out)),
    }


def precision_key(settings: Settings) -> str:
    """The name of the metric the promotion guard compares, e.g. ``precision_at_20``."""
    return f"precision_at_{settings.serving.recommendations}"


def last_training_watermark(versions: list[ModelVersion], active: ModelVersion) -> float:
    """Until when the data of the last trained candidate reaches: the latest ``until`` of
    any version's data window; without one, when the active version was registered."""
    marks = [
        float(version.data_window["until"])
        for version in versions
        if isinstance(version.data_window.get("until"), int | float)
    ]
    if marks:
        return max(marks)
    return active.created_at or 0.0


def _close_interrupted_runs(uow: UnitOfWork) -> None:
    """Runs left unfinished died with their process: the lock is ours now, so they are over."""
    building = uow.builds.building_version()
    for run_id in uow.run_log.unfinished():
        run = uow.training_runs.get(run_id)
        uow.training_runs.finish(
            run_id,
            RunOutcome.INTERRUPTED.value,
            reason="the trainer stopped during the run (crash or kill); a version left "
            "building is finished by the next run",
            metrics=None if run is None else run.metrics,
            candidate_version=building,
        )


def _request_metrics(request: RunRequest) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    if request.detail:
        metrics["trigger_detail"] = request.detail
    if request.request_id:
        metrics["request_id"] = request.request_id
    if request.force:
        metrics["forced"] = True
    return metrics


def _rebuild_metrics(report: RebuildReport) -> dict[str, Any]:
    return {
        "users": report.users_done,
        "users_built_by_rebuild": report.users_built,
        "chunks": report.chunks,
        "seconds": report.seconds,
        "users_per_second": report.users_per_second,
        "resumed": report.resumed,
    }


def _mean(
    metric: Callable[[list[str], set[str], int], float],
    recommended: list[list[str]],
    relevant: list[set[str]],
    count: int,
) -> float:
    scores = [
        metric(items, wanted, count) for items, wanted in zip(recommended, relevant, strict=True)
    ]
    return float(np.mean(scores)) if scores else 0.0


def _describe(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
