"""Result files are named by what differs between runs, so runs of different configurations
never overwrite each other, and the committed names of default runs stay as they are; the
benchmarks and ``streamrec eval`` write a document only when ``--doc`` names it.

The benchmarks' measurements are replaced by canned results here (their commands are run
for real, through ``streamrec.cli.main.main``, down to the files they write)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.benchmarks import pipeline, prequential
from streamrec.cli.main import main
from streamrec.evaluation.prequential import HitRateBoard

DATA = Path(__file__).resolve().parents[1] / "data"
ML_LATEST = str(DATA / "ml-latest")


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command runs in an empty directory with no STREAMREC_* variable: a document
    written by default would appear under ``docs/`` there."""
    for name in [name for name in __import__("os").environ if name.startswith("STREAMREC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _run(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        main(arguments)
    except SystemExit as exit_:
        assert exit_.code in (0, None), capsys.readouterr()
    captured = capsys.readouterr()
    return captured.out + captured.err


def _stems(directory: Path, suffix: str = ".json") -> set[str]:
    return {path.stem for path in directory.glob(f"*{suffix}")}


@pytest.fixture
def canned_prequential(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(settings, dataset, **_: object) -> prequential.PrequentialRun:  # type: ignore[no-untyped-def]
        board = HitRateBoard(prequential.STREAMREC, window=2)
        for position in range(4):
            board.record(position, position % 2 == 0, position)
        return prequential.PipelineRun(
            dataset=dataset.name,
            events=4,
            scored_from=0,
            recommendations=settings.serving.recommendations,
            boards={board.name: board},
            settings={"max_poll_records": settings.kafka.max_poll_records},
            batch_size=settings.kafka.max_poll_records,
        )

    monkeypatch.setattr(prequential, "run_prequential", run)


@pytest.fixture
def canned_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(settings, *, consumers: int, **_: object) -> pipeline.PipelineResults:  # type: ignore[no-untyped-def]
        return pipeline.PipelineResults(
            consumers=consumers,
            sustained=[pipeline.Sustained(stored_users=0, events=1000, events_per_second=5e3)],
        )

    monkeypatch.setattr(pipeline, "run_pipeline_benchmark", run)


def test_prequential_runs_of_different_configurations_keep_their_own_files(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    canned_prequential: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "results"
    bench = ["bench", "prequential", "--dataset", ML_LATEST, "--output-dir", str(out)]
    _run(bench, capsys)
    _run([*bench, "--batch-size", "50"], capsys)
    _run([*bench, "--batch-size", "50", "--training-steps", "20", "--no-baselines"], capsys)
    tuned = tmp_path / "tuned.toml"
    tuned.write_text("[serving]\nshortlist_length = 400\n", encoding="utf-8")
    _run(["--config", str(tuned), *bench], capsys)
    monkeypatch.setenv("STREAMREC_MODEL__CLUSTERS", "100")
    _run([*bench, "--config", str(tuned)], capsys)

    assert _stems(out) == {
        # The committed names of default runs are unchanged.
        "prequential-ml-latest-batch1000",
        "prequential-ml-latest-batch50",
        "prequential-ml-latest-batch50-training-steps20-no-baselines",
        "prequential-ml-latest-batch1000-config-tuned",
        "prequential-ml-latest-batch1000-config-tuned-model.clusters100",
    }
    assert _stems(out, ".png") == _stems(out) == _stems(out, ".md")
    assert not (tmp_path / "docs").exists()


def test_prequential_writes_the_document_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], canned_prequential: None
) -> None:
    doc = tmp_path / "measured.md"
    doc.write_text("# Performance\n\n## Trainer\n\nkept\n", encoding="utf-8")
    bench = ["bench", "prequential", "--dataset", ML_LATEST, "--output-dir", "results"]
    _run([*bench, "--batch-size", "50", "--doc", str(doc)], capsys)
    _run([*bench, "--batch-size", "50", "--candidates", "200", "--doc", str(doc)], capsys)

    text = doc.read_text(encoding="utf-8")
    assert "## Trainer\n\nkept" in text
    section = (
        "## Prequential hit rate of the pipeline on ml-latest, per consumer batch of up to 50, "
        "model frozen"
    )
    assert f"{section}\n" in text
    assert f"{section} (candidates200)\n" in text
    assert "raw numbers in prequential-ml-latest-batch50-candidates200.json" in text
    assert not (tmp_path / "docs").exists()


def test_pipeline_names_consumers_and_every_size_that_is_not_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], canned_pipeline: None
) -> None:
    out = tmp_path / "results"
    bench = ["bench", "pipeline", "--output-dir", str(out)]
    _run(bench, capsys)
    _run([*bench, "--consumers", "2"], capsys)
    _run([*bench, "--consumers", "2", "--populations", "10000"], capsys)
    _run([*bench, "--events", "5000", "--rate", "2000", "--populations", "1e4,5e5"], capsys)

    assert _stems(out) == {
        "pipeline",
        "pipeline-2-consumers",
        "pipeline-2-consumers-populations10000",
        "pipeline-events5000-rate2000-populations10000-500000",
    }
    assert not (tmp_path / "docs").exists()


def test_pipeline_names_the_batch_size_and_partitions_it_was_given(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    canned_pipeline: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMREC_KAFKA__MAX_POLL_RECORDS", "200")
    monkeypatch.setenv("STREAMREC_KAFKA__PARTITIONS", "8")
    _run(["bench", "pipeline", "--output-dir", "results"], capsys)

    assert _stems(tmp_path / "results") == {"pipeline-kafka.max_poll_records200-kafka.partitions8"}


def test_many_changed_settings_are_named_by_a_digest_and_listed_in_the_results(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    canned_pipeline: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"CLUSTERS": "8", "ITEM_DIM": "8", "HIDDEN_DIM": "16"}.items():
        monkeypatch.setenv(f"STREAMREC_MODEL__{name}", value)
    _run(["bench", "pipeline", "--output-dir", "results"], capsys)
    monkeypatch.setenv("STREAMREC_MODEL__HIDDEN_DIM", "32")
    _run(["bench", "pipeline", "--output-dir", "results"], capsys)

    stems = _stems(tmp_path / "results")
    assert len(stems) == 2
    assert all(stem.startswith("pipeline-settings-") for stem in stems)


def test_eval_runs_with_other_methods_or_settings_keep_their_own_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluate = ["eval", "--dataset", ML_LATEST, "--protocol", "loo", "--latency-users", "0"]
    evaluate += ["--no-progress", "--output-dir", "results"]
    _run([*evaluate, "--methods", "popularity"], capsys)
    _run([*evaluate, "--methods", "popularity", "--seed", "1"], capsys)
    tuned = tmp_path / "beauty.toml"
    tuned.write_text("[serving]\nshortlist_length = 400\n", encoding="utf-8")
    monkeypatch.setenv("STREAMREC_CONFIG_FILE", str(tuned))
    _run([*evaluate, "--methods", "popularity"], capsys)

    assert _stems(tmp_path / "results") == {
        "eval-ml-latest-loo-seed0-methods-popularity",
        "eval-ml-latest-loo-seed1-methods-popularity",
        "eval-ml-latest-loo-seed0-methods-popularity-config-beauty",
    }
    assert not (tmp_path / "docs").exists()


def test_a_config_file_that_sets_nothing_measured_is_not_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], canned_pipeline: None
) -> None:
    production = tmp_path / "production.toml"
    production.write_text("[observability]\nlog_format = 'json'\n", encoding="utf-8")
    _run(["--config", str(production), "bench", "pipeline", "--output-dir", "results"], capsys)

    assert _stems(tmp_path / "results") == {"pipeline"}


def test_every_benchmark_writes_a_document_only_when_told() -> None:
    import importlib

    from streamrec.cli.bench import BENCHMARK_MODULES

    for name in BENCHMARK_MODULES:
        command = importlib.import_module(f"streamrec.benchmarks.{name}").command
        doc = next(parameter for parameter in command.params if parameter.name == "doc")
        assert doc.default is None, name
