"""Validation users for choosing settings, and the options of the benchmarks that use them.

The validation users come from the training data of the evaluation split
(``evaluation.splits.validation_split``): the test users are never looked at, so what is
chosen on them can be used on the test users without flattering the choice.

>>> DECIDING_METRIC["cold-users"], DECIDING_METRIC["loo"]
('precision@50', 'hr@20')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from streamrec.config import Settings

# The protocol's headline metric decides.
DECIDING_METRIC = {"cold-users": "precision@50", "loo": "hr@20"}


@dataclass(frozen=True)
class ValidationUsers:
    """A dataset's validation split with what scoring it needs."""

    dataset: Any  # streamrec.datasets.Dataset, imported only when a benchmark runs
    protocol: str
    validation: Any  # streamrec.evaluation.splits.EvaluationSplit

    @classmethod
    def load(
        cls, settings: Settings, dataset_name: str, protocol: str, seed: int
    ) -> ValidationUsers:
        from streamrec.datasets.registry import load_dataset
        from streamrec.evaluation.splits import split_for, validation_split

        dataset = load_dataset(dataset_name, settings)
        split = split_for(protocol, dataset, seed)
        return cls(dataset, protocol, validation_split(split, dataset, seed))

    @property
    def metric(self) -> str:
        return DECIDING_METRIC[self.protocol]

    def fit_and_score(
        self, settings: Settings, seed: int, progress: bool
    ) -> tuple[dict[str, float], float]:
        """Train streamrec under ``settings`` on the training users of the validation split;
        its scores on the validation users and the seconds that fitting took."""
        from streamrec.evaluation.methods import MethodOptions, build_method

        options = MethodOptions(dataset_name=self.dataset.name, seed=seed, progress=progress)
        recommender = build_method("streamrec", options, settings)
        started = time.perf_counter()
        recommender.fit(self.validation.train, self.dataset.items, self.dataset.user_attributes)
        seconds = time.perf_counter() - started
        return self.score(recommender), seconds

    def score(self, recommender: Any) -> dict[str, float]:
        """Every quality metric of a fitted recommender on the validation users."""
        from streamrec.evaluation.harness import list_length, quality, recommend_checked

        histories = [case.history for case in self.validation.cases]
        recommendations, _ = recommend_checked(recommender, histories, list_length(self.protocol))
        return quality(
            self.protocol,
            self.validation.cases,
            recommendations,
            self.validation.training_items(),
        )


def validation_options(
    protocols: Sequence[str] = tuple(DECIDING_METRIC),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--dataset``, ``--protocol``, ``--seed``, ``--threads`` and ``--progress``: the options
    of every benchmark that trains on one dataset's split and measures it (on validation
    users, or on the test users where the benchmark says so)."""
    options = [
        click.option("--dataset", "dataset_name", default="ml-latest-small", show_default=True),
        click.option(
            "--protocol",
            type=click.Choice(tuple(protocols)),
            default="cold-users",
            show_default=True,
        ),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="CPU threads for torch and BLAS (the machine may be shared).",
        ),
        click.option("--progress/--no-progress", default=True, show_default=True),
    ]

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate
