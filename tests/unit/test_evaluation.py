"""Splits, metrics, baselines, the harness, reports, the sweep and the ``eval`` command."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from streamrec.cli.main import main
from streamrec.config import Settings
from streamrec.datasets.base import Dataset
from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream
from streamrec.evaluation import metrics
from streamrec.evaluation.baselines import (
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
)
from streamrec.evaluation.harness import EvaluationRun, cluster_sizes, evaluate, quality
from streamrec.evaluation.methods import MethodOptions, MethodUnavailable, build_method
from streamrec.evaluation.plots import plot_sweep
from streamrec.evaluation.report import cluster_summary, markdown_report, write_results
from streamrec.evaluation.splits import (
    COLD_USERS,
    LEAVE_ONE_OUT,
    EvaluationSplit,
    latest_per_pair,
    split_cold_users,
    split_leave_one_out,
)
from streamrec.evaluation.sweep import sweep
from streamrec.events import ItemEvent
from streamrec.model.history import UserHistory
from streamrec.model.interaction_table import InteractionTable

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def planted() -> Dataset:
    """Four groups of 25 preferred items in a catalogue of 300: structure a model can find."""
    config = SyntheticConfig(
        users=400, items=300, groups=4, items_per_group=25, max_groups_per_user=1, seed=11
    )
    return SyntheticStream(config).to_dataset()


@pytest.fixture(scope="module")
def planted_split(planted: Dataset) -> EvaluationSplit:
    return split_cold_users(planted, seed=0)


def user_items(dataset: Dataset) -> dict[str, set[str]]:
    table = dataset.table
    items: dict[str, set[str]] = {}
    for user, item in zip(table.users, table.items, strict=True):
        items.setdefault(table.user_vocabulary[user], set()).add(table.item_vocabulary[item])
    return items


# --- splits -------------------------------------------------------------------------------


def test_cold_users_split_is_disjoint_and_complete(planted: Dataset) -> None:
    split = split_cold_users(planted, seed=5)
    train = split.train
    train_users = {train.user_vocabulary[user] for user in train.users}
    test_users = {case.history.user_id for case in split.cases}
    assert not train_users & test_users
    assert len(train_users) + len(test_users) + split.skipped_users == 400
    assert len(train_users) == round(0.65 * 400)
    everything = user_items(planted)
    for case in split.cases:
        history = {item for item, _ in case.history.interactions}
        held_out = set(case.held_out)
        assert not history & held_out
        assert history | held_out == everything[case.history.user_id]
        assert abs(len(history) - len(held_out)) <= 1


def test_cold_users_split_is_deterministic_for_a_seed(planted: Dataset) -> None:
    first, again = split_cold_users(planted, seed=1), split_cold_users(planted, seed=1)
    other = split_cold_users(planted, seed=2)
    assert [case.history for case in first.cases] == [case.history for case in again.cases]
    assert np.array_equal(first.train.users, again.train.users)
    assert [case.history.user_id for case in first.cases] != [
        case.history.user_id for case in other.cases
    ]


def test_liked_items_are_the_held_out_items_rated_four_or_more(planted: Dataset) -> None:
    split = split_cold_users(planted, seed=0)
    table = planted.table
    rating = {
        (table.user_vocabulary[u], table.item_vocabulary[i]): r
        for u, i, r in zip(table.users, table.items, table.ratings, strict=True)
    }
    for case in split.cases[:50]:
        expected = {item for item in case.held_out if rating[case.history.user_id, item] >= 4}
        assert case.liked == expected


def test_history_weights_come_from_the_table(planted: Dataset) -> None:
    split = split_cold_users(planted, seed=0)
    weights = {weight for case in split.cases for _, weight in case.history.interactions}
    assert weights <= {-1.0, -0.5, 0.0, 0.5, 1.0} and len(weights) > 2


def test_a_later_event_on_the_same_pair_replaces_the_earlier_one() -> None:
    table = InteractionTable.from_rows(
        [("u", "a", -1.0, 1.0, 1.0), ("u", "b", 1.0, 2.0, 5.0), ("u", "a", 1.0, 3.0, 5.0)]
    )
    latest = latest_per_pair(table)
    assert len(latest) == 2
    assert latest.weights.tolist() == [1.0, 1.0] and latest.timestamps.tolist() == [2.0, 3.0]


def test_leave_one_out_holds_out_each_users_last_item() -> None:
    rows = [
        ("u1", "a", 1.0, 0.0, None),
        ("u2", "b", 1.0, 0.0, None),
        ("u1", "b", 1.0, 1.0, None),
        ("u1", "c", 1.0, 2.0, None),
        ("u2", "a", 1.0, 1.0, None),
        ("u3", "c", 1.0, 0.0, None),  # one interaction: nothing to predict from
    ]
    split = split_leave_one_out(Dataset("toy", InteractionTable.from_rows(rows)))
    cases = {case.history.user_id: case for case in split.cases}
    assert cases["u1"].held_out == ("c",)
    assert [item for item, _ in cases["u1"].history.interactions] == ["a", "b"]
    assert cases["u2"].held_out == ("a",) and split.skipped_users == 1
    assert len(split.train) == len(rows) - 2


# --- metrics ------------------------------------------------------------------------------


def test_metrics_match_hand_computed_values() -> None:
    recommended = ["a", "b", "c", "d", "e"]
    relevant = {"b", "e", "z"}
    assert metrics.precision_at(recommended, relevant, 5) == pytest.approx(2 / 5)
    assert metrics.precision_at(recommended, relevant, 10) == pytest.approx(2 / 10)
    assert metrics.recall_at(recommended, relevant, 5) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at(recommended, relevant, 5) == pytest.approx(dcg / ideal)
    # The ideal list is cut at k: with k=2 only two hits fit.
    assert metrics.ndcg_at(recommended, relevant, 2) == pytest.approx(
        (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    )
    assert metrics.hit_rate_at(recommended, {"e"}, 4) == 0.0
    assert metrics.hit_rate_at(recommended, {"e"}, 5) == 1.0
    assert metrics.recall_at(recommended, set(), 5) == 0.0
    assert metrics.ndcg_at(recommended, set(), 5) == 0.0


def test_coverage_and_the_papers_precision() -> None:
    coverage = metrics.catalogue_coverage([["a", "b"], ["b", "x"]], {"a", "b", "c", "d"})
    assert coverage == pytest.approx(2 / 4)
    share = metrics.liked_share_of_rated(["a", "b", "c"], {"a", "c"}, {"c"}, 3)
    assert share == pytest.approx(1 / 2)
    assert metrics.liked_share_of_rated(["q"], {"a"}, {"a"}, 1) is None


# --- baselines ----------------------------------------------------------------------------


class RandomRecommender:
    """The floor every baseline must beat."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self._random = np.random.default_rng(seed)
        self._items: list[str] = []

    def fit(
        self,
        train: InteractionTable,
        items: Mapping[str, ItemEvent],
        user_attributes: Mapping[str, Mapping[str, str]],
    ) -> None:
        self._items = sorted({train.item_vocabulary[item] for item in train.items})

    def recommend_many(self, histories: Sequence[UserHistory], n: int) -> list[list[str]]:
        results = []
        for history in histories:
            seen = {item for item, _ in history.interactions}
            candidates = [item for item in self._items if item not in seen]
            chosen = self._random.choice(len(candidates), size=n, replace=False)
            results.append([candidates[index] for index in chosen])
        return results

    def parameter_count(self) -> int:
        return 0


def ndcg_of(recommender: object, split: EvaluationSplit, dataset: Dataset) -> float:
    result = evaluate(recommender, split, dataset, latency_users=0, progress=False)  # type: ignore[arg-type]
    assert result.contract_violations == 0
    return result.metrics["ndcg@50"]


@pytest.fixture(scope="module")
def random_ndcg(planted: Dataset, planted_split: EvaluationSplit) -> float:
    return ndcg_of(RandomRecommender(seed=0), planted_split, planted)


@pytest.mark.parametrize("name", ["popularity", "item-knn", "ease", "als"])
def test_each_baseline_beats_random_on_planted_groups(
    name: str, planted: Dataset, planted_split: EvaluationSplit, random_ndcg: float
) -> None:
    if name == "als":
        pytest.importorskip("implicit")
    recommender = build_method(name, MethodOptions(dataset_name="synthetic"), Settings())
    assert ndcg_of(recommender, planted_split, planted) > 1.5 * random_ndcg


@pytest.mark.parametrize("name", ["item-knn", "ease", "als"])
def test_personalised_baselines_beat_popularity_on_planted_groups(
    name: str, planted: Dataset, planted_split: EvaluationSplit
) -> None:
    if name == "als":
        pytest.importorskip("implicit")
    popularity = ndcg_of(PopularityRecommender(), planted_split, planted)
    recommender = build_method(name, MethodOptions(dataset_name="synthetic"), Settings())
    assert ndcg_of(recommender, planted_split, planted) > popularity


def test_ease_weights_match_the_closed_form() -> None:
    rows = [
        (f"u{user}", f"i{item}", 1.0, float(item), None)
        for user in range(12)
        for item in range(6)
        if (user * 7 + item * 3) % 4 != 0
    ]
    table = InteractionTable.from_rows(rows)
    ease = EASERecommender(regularization=2.0)
    ease.fit(table, {}, {})
    matrix = np.zeros((12, 6))
    for user, item in zip(table.users, table.items, strict=True):
        user_id, item_id = table.user_vocabulary[user], table.item_vocabulary[item]
        matrix[int(user_id[1:]), ease._item_columns[item_id]] = 1.0
    inverse = np.linalg.inv(matrix.T @ matrix + 2.0 * np.eye(6))
    expected = -inverse / np.diag(inverse)[np.newaxis, :]
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(ease._weights, expected, rtol=1e-4, atol=1e-5)


def test_recommendations_never_repeat_history_and_skip_unknown_items() -> None:
    table = InteractionTable.from_rows(
        [("u1", "a", 1.0, 0.0, None), ("u1", "b", 1.0, 1.0, None), ("u2", "b", 1.0, 2.0, None)]
    )
    knn = ItemKNNRecommender()
    knn.fit(table, {}, {})
    history = UserHistory("new", [("b", 1.0), ("never-seen", 1.0)])
    assert knn.recommend_many([history], n=10) == [["a"]]
    assert knn.recommend_many([], n=10) == []


def test_build_method_reports_what_cannot_run() -> None:
    with pytest.raises(MethodUnavailable, match="unknown method"):
        build_method("magic", MethodOptions(), Settings())
    huge = MethodOptions(shortlist_length=10**9)
    with pytest.raises(MethodUnavailable, match="shortlist_length"):
        build_method("streamrec", huge, Settings())


# --- harness and reports ------------------------------------------------------------------


class CarelessRecommender(RandomRecommender):
    """Breaks the contract: adds a history item and a repeated item to n honest ones."""

    name = "careless"

    def recommend_many(self, histories: Sequence[UserHistory], n: int) -> list[list[str]]:
        honest = super().recommend_many(histories, n)
        return [
            [history.interactions[0][0], items[0], *items]
            for history, items in zip(histories, honest, strict=True)
        ]


def test_the_harness_removes_and_counts_contract_violations(
    planted: Dataset, planted_split: EvaluationSplit
) -> None:
    result = evaluate(CarelessRecommender(0), planted_split, planted, latency_users=3)
    assert result.contract_violations == 2 * len(planted_split.cases)
    honest = evaluate(RandomRecommender(0), planted_split, planted, latency_users=0)
    assert result.metrics == honest.metrics  # what is left is exactly the honest list
    assert result.latency_p50_ms is not None and result.latency_p99_ms is not None
    assert 0 <= result.latency_p50_ms <= result.latency_p99_ms


def test_leave_one_out_quality_is_scored_at_5_10_and_20() -> None:
    rows = [(f"u{u}", f"i{i}", 1.0, float(i), None) for u in range(3) for i in range(u, u + 3)]
    split = split_leave_one_out(Dataset("toy", InteractionTable.from_rows(rows)))
    recommendations = [["i2"], ["x", "y", "z", "w", "v", "i3"], ["nothing"]]
    scores = quality(LEAVE_ONE_OUT, split.cases, recommendations, split.training_items())
    assert scores["hr@5"] == pytest.approx(1 / 3)
    assert scores["hr@10"] == pytest.approx(2 / 3)
    assert scores["ndcg@10"] == pytest.approx((1 + 1 / math.log2(7)) / 3)


def test_results_are_written_as_json_and_markdown(
    tmp_path: Path, planted: Dataset, planted_split: EvaluationSplit
) -> None:
    run = EvaluationRun("synthetic", COLD_USERS, 0, planted_split.summary())
    run.results.append(evaluate(PopularityRecommender(), planted_split, planted, 2, 0, False))
    run.skipped["als"] = "ALS skipped: the implicit library is missing"
    paths = write_results(run, tmp_path)
    assert paths["json"].name == "eval-synthetic-cold-users-seed0.json"
    written = json.loads(paths["json"].read_text())
    assert (
        written["results"][0]["metrics"]["precision@50"] == run.results[0].metrics["precision@50"]
    )
    markdown = paths["markdown"].read_text()
    assert "| popularity |" in markdown and "ALS skipped" in markdown
    assert markdown == markdown_report(run)


def test_cluster_sizes_come_from_the_recommender_when_it_has_them() -> None:
    class WithSizes(PopularityRecommender):
        def cluster_sizes(self) -> list[int]:
            return [3, 0, 1]

    class Statistics:
        mass = np.array([2.5, 0.5])

    class WithStatistics(PopularityRecommender):
        statistics = Statistics()  # as EfficientRecRecommender.statistics

    assert cluster_sizes(WithSizes()) == [3.0, 0.0, 1.0]
    assert cluster_sizes(WithStatistics()) == [2.5, 0.5]
    assert cluster_sizes(PopularityRecommender()) is None
    assert "(largest 75% of the total), 1 empty" in cluster_summary([3.0, 0.0, 1.0])


# --- sweep --------------------------------------------------------------------------------


class ShortlistRecommender(PopularityRecommender):
    """A stand-in for streamrec: K is ignored, L cuts the candidate list."""

    fits = 0

    def __init__(self, clusters: int, shortlist_length: int) -> None:
        super().__init__()
        self.clusters, self.shortlist_length = clusters, shortlist_length

    def fit(self, *arguments: object) -> None:
        ShortlistRecommender.fits += 1
        super().fit(*arguments)  # type: ignore[arg-type]

    def reconfigure(self, shortlist_length: int) -> None:
        self.shortlist_length = shortlist_length

    def recommend_many(self, histories: Sequence[UserHistory], n: int) -> list[list[str]]:
        return super().recommend_many(histories, min(n, self.shortlist_length))


def test_the_sweep_fits_once_per_k_and_plots(
    tmp_path: Path, planted: Dataset, planted_split: EvaluationSplit
) -> None:
    ShortlistRecommender.fits = 0
    points = sweep(ShortlistRecommender, planted_split, planted, [2, 3], [5, 50], progress=False)
    assert ShortlistRecommender.fits == 2
    assert [(point.clusters, point.shortlist_length) for point in points] == [
        (2, 5), (2, 50), (3, 5), (3, 50)
    ]  # fmt: skip
    assert points[0].metrics["recall@50"] < points[1].metrics["recall@50"]
    path = plot_sweep(points, COLD_USERS, "test sweep", tmp_path / "sweep.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the command --------------------------------------------------------------------------


def run_cli(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(arguments)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_eval_command_writes_results_for_the_selected_methods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_cli(
        [
            "eval",
            "--dataset", str(DATA / "ml-latest"),
            "--protocol", "loo",
            "--methods", "popularity,item-knn",
            "--output-dir", str(tmp_path),
            "--latency-users", "2",
            "--doc", str(tmp_path / "quality.md"),
            "--no-progress",
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, output
    stem = "eval-ml-latest-loo-seed0-methods-popularity-item-knn"
    written = json.loads((tmp_path / f"{stem}.json").read_text())
    assert [result["method"] for result in written["results"]] == ["popularity", "item-knn"]
    assert "HR@5" in output
    document = (tmp_path / "quality.md").read_text()
    assert "## ml-latest, loo, seed 0 (methods-popularity-item-knn)" in document
    assert "| item-knn |" in document and f"{stem}.json" in document
    assert written["settings"] == {} and "changed from the defaults: none." in document


def test_eval_results_name_the_settings_that_differ_from_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "tuned.toml"
    config_file.write_text("[serving]\nshortlist_length = 400\n")
    monkeypatch.setenv("STREAMREC_MODEL__CLUSTERS", "100")
    code, output = run_cli(
        [
            "--config", str(config_file),
            "eval",
            "--dataset", str(DATA / "ml-latest"),
            "--protocol", "loo",
            "--methods", "popularity",
            "--output-dir", str(tmp_path),
            "--latency-users", "0",
            "--no-progress",
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, output
    # The file's own setting names the file; the one from the environment is named itself.
    stem = "eval-ml-latest-loo-seed0-methods-popularity-config-tuned-model.clusters100"
    written = json.loads((tmp_path / f"{stem}.json").read_text())
    assert written["settings"] == {"model.clusters": 100, "serving.shortlist_length": 400}
    report = (tmp_path / f"{stem}.md").read_text()
    assert "`model.clusters` 100, `serving.shortlist_length` 400." in report


def test_eval_command_refuses_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_cli(["eval", "--dataset", str(tmp_path / "absent")], capsys)
    assert code == 2 and "not found" in output and len(output.strip().splitlines()) == 1
    code, output = run_cli(
        ["eval", "--dataset", "synthetic", "--methods", "popularity,magic"], capsys
    )
    assert code == 2 and "unknown magic" in output
