"""Training objectives beside the triplet loss: full and corrected softmax, input dropout and
noisy profiles, each learning planted groups and none adding a parameter to the served model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from streamrec.benchmarks.objectives import VARIANTS
from streamrec.cli.main import cli
from streamrec.config import TrainingSettings
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.training.objectives import ProfileNoise, RetrievalCandidates, kept_rows
from streamrec.model.training.sampler import InMemoryUserSampler
from streamrec.model.training.trainer import train
from tests.unit.test_model_training import SMALL, planted_table

OBJECTIVES = {
    "full softmax": {"retrieval_negatives": "catalogue"},
    "batch softmax + logQ": {"popularity_correction": True},
    "input dropout": {"input_dropout": 0.5},
    "variational": {"variational_weight": 0.2},
    "whole-set targets": {"retrieval_targets": "whole_set"},
    "users weighted equally": {"retrieval_user_weight": "equal"},
    "next item after a split in time": {"retrieval_split": "time"},
}


def test_input_dropout_drops_about_its_share_and_never_empties_a_view() -> None:
    bags = np.repeat(np.arange(400), 5)
    kept = kept_rows(bags, 0.5, np.random.default_rng(0))
    assert np.bincount(bags[kept], minlength=400).min() >= 1
    assert 0.45 < kept.mean() < 0.6
    singletons = np.arange(50)
    assert kept_rows(singletons, 0.99, np.random.default_rng(0)).all()


def test_the_catalogue_is_every_item_with_its_share_of_interactions() -> None:
    table = planted_table(users=40)
    sampler = InMemoryUserSampler(table)
    catalogue = sampler.catalogue
    assert sorted(catalogue.items) == sorted(set(table.item_vocabulary))
    assert catalogue.frequencies.sum() == pytest.approx(1.0)
    batch = sampler(8, np.random.default_rng(0))
    assert batch.catalogue_rows is not None
    assert [catalogue.items[row] for row in batch.catalogue_rows] == list(batch.items)


def test_the_full_softmax_scores_every_item_and_the_batch_one_only_the_batchs() -> None:
    model = EfficientRec.new(SMALL, FeatureSchema())
    sampler = InMemoryUserSampler(planted_table(users=40))
    batch = sampler(4, np.random.default_rng(0))
    full = RetrievalCandidates(
        model, sampler, {}, TrainingSettings(retrieval_negatives="catalogue")
    ).for_batch(batch)
    corrected = RetrievalCandidates(
        model, sampler, {}, TrainingSettings(popularity_correction=True)
    ).for_batch(batch)
    assert full.candidates.shape[0] == len(sampler.catalogue.items)
    assert full.logit_offsets is None
    assert corrected.candidates.shape[0] == len(batch.items)
    expected = -np.log(sampler.catalogue.frequencies[batch.catalogue_rows])
    assert corrected.logit_offsets is not None
    np.testing.assert_allclose(corrected.logit_offsets.numpy(), expected, rtol=1e-5)


def test_noisy_profiles_are_centred_on_the_profile_and_pay_a_prior() -> None:
    noise = ProfileNoise(8)
    profiles = torch.full((2000, 8), 0.5)
    with torch.no_grad():
        noise.log_variance.bias.fill_(0.0)
        noisy, kl = noise(profiles)
    assert float((noisy - profiles).mean()) == pytest.approx(0.0, abs=0.02)
    assert float((noisy - profiles).std()) == pytest.approx(1.0, abs=0.03)
    # Unit variance: the KL is the squared means' half, 0.5 * 8 * 0.25.
    assert float(kl) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_each_objective_learns_planted_groups_without_new_served_parameters(name: str) -> None:
    model = EfficientRec.new(SMALL, FeatureSchema(), seed=0)
    parameters = model.parameter_count()
    settings = TrainingSettings(users_per_step=64, learning_rate=1e-2, **OBJECTIVES[name])
    report = train(model, InMemoryUserSampler(planted_table()), {}, settings, steps=60)
    early = np.mean([losses.retrieval for losses in report.losses[:5]])
    late = np.mean([losses.retrieval for losses in report.losses[-5:]])
    assert late < early
    assert model.parameter_count() == parameters
    variational = [losses.variational for losses in report.losses]
    assert (max(variational) > 0) == (name == "variational")
    histories = [([f"g{group}-i{item}" for item in range(4)], [1.0] * 4) for group in range(4)]
    histories += [([f"g{group}-i{item}" for item in range(4, 8)], [1.0] * 4) for group in range(4)]
    profiles = model.encode_histories(histories, [None] * 8, {}).profiles
    distances = np.linalg.norm(profiles[:, None] - profiles[None], axis=2)
    other_group = distances[:4, 4:][~np.eye(4, dtype=bool)]
    assert np.diag(distances[:4, 4:]).mean() < other_group.mean()


def test_the_objectives_benchmark_trains_each_variant_on_validation_users(tmp_path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            "objectives",
            "--dataset",
            "tests/data/ml-100k",
            "--variants",
            "configured,full softmax",
            "--no-progress",
            "--output-dir",
            str(tmp_path),
        ],
        env={"STREAMREC_TRAINING__STEPS": "5", "STREAMREC_TRAINING__USERS_PER_STEP": "16"},
    )
    assert result.exit_code == 0, result.output
    assert "| full softmax | retrieval_negatives catalogue |" in result.output
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == [
        "objectives-ml-100k-cold-users-seed0-variants-configured-full-softmax-training.steps5"
        "-training.users_per_step16.json",
        "objectives-ml-100k-cold-users-seed0-variants-configured-full-softmax-training.steps5"
        "-training.users_per_step16.md",
    ]
    assert set(VARIANTS) >= {"configured", "full softmax"}
