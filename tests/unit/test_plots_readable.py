"""Every plot a benchmark or ``streamrec eval`` writes can be read: each target or reference
line (a straight horizontal or vertical line) is named in a legend, and no two tick labels
of an axis overlap. The figures are caught as they are saved and checked as drawn."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from streamrec.benchmarks import pipeline, prequential, recommendation_latency, trainer
from streamrec.evaluation.plots import plot_sweep
from streamrec.evaluation.prequential import HitRateBoard
from streamrec.evaluation.splits import COLD_USERS, LEAVE_ONE_OUT
from streamrec.evaluation.sweep import SweepPoint


@pytest.fixture
def saved_figures(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Figure]]:
    """The figures saved while the test runs, drawn, before the plot function closes them."""
    figures: list[Figure] = []
    save = Figure.savefig

    def keep(figure: Figure, *arguments: Any, **options: Any) -> None:
        save(figure, *arguments, **options)
        figures.append(figure)

    monkeypatch.setattr(Figure, "savefig", keep)
    yield figures


def _straight(line: Line2D) -> bool:
    """An axhline or axvline: two points sharing their x or their y."""
    xs, ys = list(line.get_xdata()), list(line.get_ydata())
    return len(xs) == 2 and (xs[0] == xs[1] or ys[0] == ys[1])


def _legend_texts(figure: Figure) -> set[str]:
    legends = [*figure.legends, *(axis.get_legend() for axis in figure.axes)]
    return {text.get_text() for legend in legends if legend for text in legend.get_texts()}


def _assert_readable(figure: Figure) -> None:
    # pyplot.close left the figure without its canvas: draw it on one of its own.
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    named = _legend_texts(figure)
    for axis in figure.axes:
        for line in axis.get_lines():
            if _straight(line):
                label = str(line.get_label())
                assert not label.startswith("_"), f"an unnamed target line in {axis.get_title()!r}"
                assert any(label in text for text in named), f"{label!r} is in no legend"
        for labels in (axis.get_xticklabels(), axis.get_yticklabels()):
            boxes = [
                label.get_window_extent(renderer)
                for label in labels
                if label.get_visible() and label.get_text()
            ]
            for first, second in combinations(boxes, 2):
                assert not first.overlaps(second), (
                    f"tick labels overlap in {axis.get_title()!r}: "
                    f"{[label.get_text() for label in labels]}"
                )


def _check(plot: Callable[[Path], object], figures: list[Figure], path: Path) -> None:
    plot(path)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert len(figures) == 1
    _assert_readable(figures[0])


def test_pipeline_plot_names_its_targets(saved_figures: list[Figure], tmp_path: Path) -> None:
    raw = [("kafka-python produce", 30_308), ("database upsert, 1000 per transaction", 82_961)]
    results = pipeline.PipelineResults(
        consumers=2,
        raw=[{"what": what, "per_second": rate, "count": 20_000} for what, rate in raw],
        sustained=[
            pipeline.Sustained(stored, 20_000, rate)
            for stored, rate in ((0, 11_145), (10_000, 9_131), (1_000_000, 6_060))
        ],
        latency=pipeline.Latency(
            1_000.0,
            1_000.0,
            20_000,
            20_000,
            {"p50": 0.059, "p99": 0.128},
            over_time=[{"p50": 0.05, "p99": 0.1 + part / 100} for part in range(20)],
        ),
    )
    _check(lambda path: pipeline.plot(results, path), saved_figures, tmp_path / "p.png")
    assert {"target 5,000 events/s", "target p99 1 s"} <= _legend_texts(saved_figures[0])


def test_prequential_plot_names_every_method(saved_figures: list[Figure], tmp_path: Path) -> None:
    generator = random.Random(0)
    boards = {}
    for name in ("streamrec (pipeline)", "popularity", "river FunkMF"):
        board = HitRateBoard(name, window=2_000)
        for position in range(100_000):
            board.record(position, generator.random() < 0.06, position % 40)
        boards[name] = board
    run = prequential.PrequentialRun("ml-latest-small", 100_000, 20_000, 20, boards)
    _check(lambda path: prequential.plot(run, path), saved_figures, tmp_path / "q.png")
    assert set(boards) <= _legend_texts(saved_figures[0])


@pytest.mark.parametrize("protocol", [COLD_USERS, LEAVE_ONE_OUT])
def test_sweep_plot_names_its_reference_methods(
    saved_figures: list[Figure], tmp_path: Path, protocol: str
) -> None:
    lengths = (200, 400, 800, 1200, 1600, 2000, 3000)
    metrics = ("precision@50", "ndcg@50", "hr@20", "ndcg@20")
    points = [
        SweepPoint(k, length, 1.0, {name: 0.05 + length / 1e5 + k / 1e4 for name in metrics})
        for k in (16, 43, 100)
        for length in lengths
    ]
    # Close values: written beside the lines, these names used to overlap.
    references = {
        method: {name: value for name in metrics}
        for method, value in (("item-knn", 0.0909), ("streamrec", 0.0935), ("ease", 0.108))
    }

    def plot(path: Path) -> object:
        return plot_sweep(points, protocol, "sweep", path, references=references)

    _check(plot, saved_figures, tmp_path / "s.png")
    assert {f"{method} (same split)" for method in references} <= _legend_texts(saved_figures[0])


def test_trainer_plot_is_readable(saved_figures: list[Figure], tmp_path: Path) -> None:
    points = [
        trainer.ScalePoint(users, 10.0, 0.8, 2.0, 0.4, 20_000, 1_400.0, 5_000, 40_000)
        for users in (10_000, 100_000, 1_000_000)
    ]
    _check(lambda path: trainer.plot(points, path), saved_figures, tmp_path / "t.png")


def test_recommendation_latency_plot_names_its_target(
    saved_figures: list[Figure], tmp_path: Path
) -> None:
    generator = random.Random(1)
    result = {
        "dataset": "ml-1m",
        "durations_ns": {
            recommendation_latency.SERVING: [
                generator.randint(200_000, 500_000) for _ in range(300)
            ],
            recommendation_latency.FULL_CATALOGUE: [
                generator.randint(50_000, 250_000) for _ in range(300)
            ],
        },
    }
    _check(
        lambda path: recommendation_latency.plot(result, path), saved_figures, tmp_path / "r.png"
    )
    assert any(text.startswith("target p99") for text in _legend_texts(saved_figures[0]))
