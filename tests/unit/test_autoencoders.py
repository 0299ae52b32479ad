"""Mult-DAE and Mult-VAE: fold-in scoring, determinism, resumable training, no per-user
parameters, and learning planted structure."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.config import Settings
from streamrec.evaluation.autoencoders import (
    MultAutoencoderRecommender,
    MultDAERecommender,
    MultVAERecommender,
)
from streamrec.evaluation.methods import MethodOptions, build_method
from streamrec.model.history import UserHistory
from streamrec.model.interaction_table import InteractionTable

GROUPS = 3
ITEMS_PER_GROUP = 12
SMALL = {"hidden": 16, "latent": 8, "training_batch": 32, "progress": False}
KINDS = [MultDAERecommender, MultVAERecommender]


def planted_table(users: int) -> InteractionTable:
    """Each user takes 6 items of their own group."""
    generator = np.random.default_rng(0)
    rows = []
    for user in range(users):
        group = user % GROUPS
        for step, item in enumerate(generator.choice(ITEMS_PER_GROUP, size=6, replace=False)):
            rows.append((f"u{user}", f"g{group}-i{item}", 1.0, float(step), None))
    return InteractionTable.from_rows(rows)


def histories() -> list[UserHistory]:
    return [
        UserHistory(f"cold{group}", [(f"g{group}-i{item}", 1.0) for item in range(3)])
        for group in range(GROUPS)
    ]


def fitted(kind: type[MultAutoencoderRecommender], epochs: int, seed: int = 0, users: int = 150):
    recommender = kind(epochs=epochs, seed=seed, **SMALL)
    recommender.fit(planted_table(users), {}, {})
    return recommender


def scores(recommender: MultAutoencoderRecommender) -> np.ndarray:
    return recommender._score(recommender._history_matrix(histories()))


@pytest.mark.parametrize("kind", KINDS)
def test_cold_users_get_their_groups_items_never_their_history(
    kind: type[MultAutoencoderRecommender],
) -> None:
    recommender = fitted(kind, epochs=60)
    for group, (history, items) in enumerate(
        zip(histories(), recommender.recommend_many(histories(), n=5), strict=True)
    ):
        assert len(items) == 5
        assert not set(items) & {item for item, _ in history.interactions}
        # Chance would give a third.
        assert sum(item.startswith(f"g{group}-") for item in items) >= 4


@pytest.mark.parametrize("kind", KINDS)
def test_training_is_deterministic_for_a_seed_and_differs_across_seeds(
    kind: type[MultAutoencoderRecommender],
) -> None:
    first, again, other = fitted(kind, 3), fitted(kind, 3), fitted(kind, 3, seed=1)
    np.testing.assert_array_equal(scores(first), scores(again))
    assert not np.allclose(scores(first), scores(other))


@pytest.mark.parametrize("kind", KINDS)
def test_training_in_parts_equals_training_at_once(
    kind: type[MultAutoencoderRecommender],
) -> None:
    at_once = fitted(kind, 4)
    in_parts = fitted(kind, 1)
    in_parts.train_epochs(3)
    assert in_parts.epochs_trained == at_once.epochs_trained == 4
    np.testing.assert_allclose(scores(in_parts), scores(at_once), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_the_parameter_count_does_not_grow_with_users(
    kind: type[MultAutoencoderRecommender],
) -> None:
    assert (
        fitted(kind, 0, users=30).parameter_count() == fitted(kind, 0, users=300).parameter_count()
    )


def test_the_vae_has_a_mean_and_a_variance_per_code_dimension() -> None:
    dae, vae = fitted(MultDAERecommender, 0), fitted(MultVAERecommender, 0)
    # The encoder's last layer doubles (mean, log-variance): 16 * 8 weights and 8 biases more.
    assert vae.parameter_count() - dae.parameter_count() == 16 * 8 + 8


def test_eval_builds_both_with_the_epochs_asked_for() -> None:
    for name, kind in (("mult-dae", MultDAERecommender), ("mult-vae", MultVAERecommender)):
        recommender = build_method(name, MethodOptions(seed=3, autoencoder_epochs=7), Settings())
        assert isinstance(recommender, kind)
        assert (recommender.epochs, recommender.seed) == (7, 3)


def test_negative_epochs_are_refused() -> None:
    with pytest.raises(ValueError, match="epochs"):
        MultDAERecommender(epochs=-1)
