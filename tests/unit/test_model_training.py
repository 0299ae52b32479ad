"""Training: halves, losses, samplers, learning on planted groups, fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamrec.config import ModelSettings, TrainingSettings
from streamrec.model.cluster_report import cluster_report
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.interaction_table import InteractionTable
from streamrec.model.training.losses import (
    membership_balance,
    membership_consistency,
    retrieval_loss,
    triplet_loss,
    triplet_terms,
)
from streamrec.model.training.sampler import InMemoryUserSampler, UserBatch
from streamrec.model.training.trainer import _half_bags, fine_tune, train

SMALL = ModelSettings(
    hash_buckets=512, item_dim=16, profile_dim=16, hidden_dim=32, clusters=4, feature_buckets=64
)


def planted_table(users: int = 240, groups: int = 4, items_per_group: int = 15) -> InteractionTable:
    """Each user rates 8 random items of their group (users cycle through the groups)."""
    generator = np.random.default_rng(0)
    rows = []
    for user in range(users):
        group = user % groups
        chosen = generator.choice(items_per_group, size=8, replace=False)
        for step, item in enumerate(chosen):
            rows.append((f"u{user}", f"g{group}-i{item}", 1.0, float(step), None))
    return InteractionTable.from_rows(rows)


def three_users(timestamps: np.ndarray | None = None) -> UserBatch:
    """Users of 2, 5 and 3 rows, one distinct item per row."""
    return UserBatch(
        items=[str(i) for i in range(10)],
        item_rows=np.arange(10),
        weights=np.ones(10, np.float32),
        offsets=np.array([0, 2, 7, 10]),
        attributes=[None] * 3,
        timestamps=timestamps,
    )


def test_halves_are_disjoint_non_empty_and_cover_each_users_set() -> None:
    batch = three_users()
    offsets = batch.offsets
    bags, next_rows = _half_bags(batch, np.random.default_rng(0))
    user_of_row = np.repeat(np.arange(3), np.diff(offsets))
    assert (bags // 2 == user_of_row).all()
    assert np.bincount(bags, minlength=6).tolist() == [1, 1, 2, 3, 1, 2]
    assert next_rows is None


@pytest.mark.parametrize("seed", range(20))
def test_a_split_in_time_puts_older_rows_first_and_names_the_next_one(seed: int) -> None:
    generator = np.random.default_rng(seed)
    timestamps = generator.permutation(10).astype(np.float64)
    batch = three_users(timestamps)
    offsets = batch.offsets
    bags, next_rows = _half_bags(batch, generator, "time")
    assert next_rows is not None and len(next_rows) == 3
    for user in range(3):
        rows = np.arange(offsets[user], offsets[user + 1])
        older, newer = rows[bags[rows] == 2 * user], rows[bags[rows] == 2 * user + 1]
        assert len(older) >= 1 and len(newer) >= 1
        assert timestamps[older].max() < timestamps[newer].min()
        # The next row is the oldest of the newer view.
        assert next_rows[user] == newer[np.argmin(timestamps[newer])]


def test_the_sampler_caps_sets_skips_single_interaction_users_and_is_seeded() -> None:
    rows = [("solo", "a", 1.0, 0.0, None)] + [
        ("many", f"i{item}", 1.0, float(item), None) for item in range(50)
    ]
    sampler = InMemoryUserSampler(InteractionTable.from_rows(rows), max_interactions=10)
    batch = sampler(5, np.random.default_rng(1))
    assert batch.users == 1 and len(batch.item_rows) == 10
    again = sampler(5, np.random.default_rng(1))
    assert list(again.items) == list(batch.items)


def test_a_sampler_with_no_trainable_user_is_refused() -> None:
    with pytest.raises(ValueError, match="two interactions"):
        InMemoryUserSampler(InteractionTable.from_rows([("u", "a", 1.0, 0.0, None)]))


def test_triplet_loss_is_zero_for_separated_users_and_positive_for_confused_ones() -> None:
    anchors = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    assert float(triplet_loss(anchors, anchors + 0.1, 1.0, "l2")) == 0.0
    confused = anchors[[1, 0, 2]]
    assert float(triplet_loss(anchors, confused, 1.0, "l2")) > 0.0
    assert float(triplet_loss(anchors, confused, 0.1, "cosine")) > 0.0


def test_semi_hard_mining_takes_the_closest_negative_beyond_the_positive() -> None:
    anchors = torch.tensor([[0.0], [1.5], [3.0], [0.5]])
    positives = torch.tensor([[1.0], [100.0], [200.0], [2.0]])
    terms = triplet_terms(anchors, positives, 1.0, "l2")
    # Anchor 0: positive at 1; the hardest negative (0.5) would give 1.5, semi-hard (1.5) 0.5.
    assert float(terms[0]) == pytest.approx(0.5)
    # Anchor 2: positive at 197, no negative beyond it: the farthest (p1 at 97) is used.
    assert float(terms[2]) == pytest.approx(1.0 + 197.0 - 97.0)


def test_a_batch_of_one_user_has_no_triplet_loss() -> None:
    assert float(triplet_loss(torch.zeros(1, 2), torch.ones(1, 2), 1.0, "l2")) == 0.0


def test_balance_is_zero_when_even_and_positive_when_clumped() -> None:
    even = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    clumped = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert float(membership_balance(even)) == pytest.approx(0.0, abs=1e-6)
    assert float(membership_balance(clumped)) > 0.5
    assert float(membership_consistency(even, even)) < float(membership_consistency(even, clumped))


def test_retrieval_loss_ignores_hidden_items() -> None:
    queries = torch.tensor([[1.0, 0.0]])
    targets_vectors = torch.tensor([[1.0, 0.0], [50.0, 0.0]])
    wanted = torch.tensor([[1.0, 0.0]])
    hidden = torch.tensor([[False, True]])
    visible = torch.tensor([[False, False]])
    assert float(retrieval_loss(queries, targets_vectors, wanted, hidden)) == pytest.approx(0.0)
    assert float(retrieval_loss(queries, targets_vectors, wanted, visible)) > 10.0


@pytest.mark.parametrize("cluster_head", ["sigmoid", "centroid"])
def test_training_learns_planted_groups(cluster_head: str) -> None:
    settings = SMALL.model_copy(update={"cluster_head": cluster_head})
    model = EfficientRec.new(settings, FeatureSchema(), seed=0)
    table = planted_table()
    report = train(
        model,
        InMemoryUserSampler(table),
        {},
        TrainingSettings(users_per_step=64, learning_rate=1e-2),
        steps=60,
        top_memberships=1,
    )
    for name in ("total", "triplet"):
        early = np.mean([getattr(losses, name) for losses in report.losses[:5]])
        late = np.mean([getattr(losses, name) for losses in report.losses[-5:]])
        assert late < early, name
    # Users of one planted group end up closer to each other than to other groups.
    histories = [([f"g{group}-i{item}" for item in range(4)], [1.0] * 4) for group in range(4)]
    histories += [([f"g{group}-i{item}" for item in range(4, 8)], [1.0] * 4) for group in range(4)]
    profiles = model.encode_histories(histories, [None] * 8, {}).profiles
    distances = np.linalg.norm(profiles[:, None] - profiles[None], axis=2)
    same_group = np.diag(distances[:4, 4:])
    other_group = distances[:4, 4:][~np.eye(4, dtype=bool)]
    assert same_group.mean() < other_group.mean()
    assert report.clusters.empty_clusters < settings.clusters


def test_fine_tuning_trains_a_copy_and_leaves_the_serving_model_untouched() -> None:
    model = EfficientRec.new(SMALL, FeatureSchema(), seed=0)
    before = model.item_vectors(["g0-i1"], {})
    candidate, report = fine_tune(
        model,
        InMemoryUserSampler(planted_table()),
        {},
        TrainingSettings(users_per_step=32, fine_tune_steps=3),
    )
    assert report.steps == 3
    np.testing.assert_array_equal(model.item_vectors(["g0-i1"], {}), before)
    assert not np.allclose(candidate.item_vectors(["g0-i1"], {}), before)


def test_any_callable_can_be_the_sampler() -> None:
    table = planted_table(users=40)
    in_memory = InMemoryUserSampler(table)
    calls = []

    def database_like(users: int, generator: np.random.Generator) -> UserBatch:
        calls.append(users)
        return in_memory(users, generator)

    model = EfficientRec.new(SMALL, FeatureSchema())
    train(model, database_like, {}, TrainingSettings(users_per_step=16), steps=2)
    assert calls[:2] == [16, 16]


def test_cluster_report_counts_sizes_by_top1_and_mass_and_entropy() -> None:
    report = cluster_report(np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]), top=2)
    assert report.sizes_by_top1 == (2, 0, 0)
    assert report.sizes_by_mass == pytest.approx((1.5, 0.5, 0.0))
    assert report.mean_entropy == pytest.approx(np.log(2) / 2)
    assert "1 empty" not in report.summary() and "2 empty" in report.summary()
