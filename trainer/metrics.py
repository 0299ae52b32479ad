"""The trainer process's metrics: the shared TrainerMetrics plus what only this process
knows (a run in progress, rebuild progress, the last scores, drift and control commands),
all on the same registry, so one /metrics page shows them.

>>> metrics = RunMetrics(TrainerMetrics(clock=lambda: 5.0))
>>> metrics.observe_command("drift", "suppressed")
>>> metrics.trainer.sample("streamrec_trainer_commands_total", trigger="drift",
...                        decision="suppressed")
1.0
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from streamrec.observability.metrics import NAMESPACE, TrainerMetrics
from streamrec.services.training_run import RunOutcome, RunResult
from streamrec.storage.trainer import RebuildProgress


class RunMetrics:
    def __init__(self, trainer: TrainerMetrics) -> None:
        self.trainer = trainer
        common = {"namespace": NAMESPACE, "subsystem": "trainer", "registry": trainer.registry}
        self.run_in_progress = Gauge("run_in_progress", "1 while a run holds the lock.", **common)
        self.rebuild_progress = Gauge(
            "rebuild_progress_ratio",
            "Share of users done by the current rebuild; 1 when none is running.",
            **common,
        )
        self.rebuild_progress.set(1.0)
        self.scores = Gauge(
            "last_precision",
            "Precision at N on the held-out users in the last judged run.",
            ["model"],
            **common,
        )
        self.commands = Counter(
            "commands",
            "Train commands from the control topic by trigger and decision (accepted, "
            "suppressed by the drift rate limit, refused as malformed).",
            ["trigger", "decision"],
            **common,
        )

    def observe_result(self, result: RunResult, precision_key: str) -> None:
        metrics = result.metrics
        seconds = metrics.get("seconds", {})
        rebuild = metrics.get("rebuild", {})
        self.trainer.observe_run(
            result.outcome.value,
            fine_tune_seconds=seconds.get("fine_tune"),
            rebuild_seconds=rebuild.get("seconds"),
            rebuilt_users=int(rebuild.get("users_built_by_rebuild", 0)),
        )
        for model in ("candidate", "active"):
            score = metrics.get(model, {}).get(precision_key)
            if score is not None:
                self.scores.labels(model).set(score)
        if result.outcome is RunOutcome.PROMOTED:
            self.rebuild_progress.set(1.0)

    def observe_progress(self, progress: RebuildProgress) -> None:
        self.rebuild_progress.set(progress.share_done)

    def observe_command(self, trigger: str, decision: str) -> None:
        self.commands.labels(trigger, decision).inc()
