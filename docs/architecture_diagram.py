"""Draws docs/architecture.png: the layers, an event's path from the interactions topic to the
recommendations topic, and the state port with its two adapters (docs/architecture.md).

Run from the repository root, ``python docs/architecture_diagram.py``; it writes the PNG next
to this file. matplotlib only, nothing fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a file, never a window
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

OUTPUT = Path(__file__).resolve().with_name("architecture.png")
WIDTH, HEIGHT = 18.0, 10.9
BOX_WIDTH, BOX_HEIGHT = 3.7, 0.8


@dataclass(frozen=True)
class Layer:
    name: str
    imports: str
    bottom: float
    top: float
    colour: str


# Top to bottom, as pyproject.toml's [tool.importlinter] declares them: a layer may import
# the layers below it, never those above.
LAYERS = [
    Layer(
        "streamrec.cli : streamrec.benchmarks",
        "entry points; the two are independent",
        9.8,
        10.6,
        "#eeeeee",
    ),
    Layer("streamrec.api", "the read API and dashboard", 9.0, 9.8, "#f4f4f4"),
    Layer(
        "consumers | trainer",
        "the processes; independent of each other",
        6.2,
        9.0,
        "#e3f0fb",
    ),
    Layer("streamrec.services", "transactions, storage, Kafka-free", 3.5, 6.2, "#e8f6e8"),
    Layer(
        "streamrec.model",
        "no I/O: imports no storage, kafka, evaluation,\ndatasets, cli, observability",
        0.2,
        3.5,
        "#fdf1dd",
    ),
]

# The event's path, in order: (number, file, what it does there, centre x, centre y).
PATH = [
    (1, "consumers/batch_loop.py", "poll; apply; publish; ack; commit", 5.3, 7.0),
    (2, "streamrec/services/ingest.py", "one transaction per batch", 5.3, 5.35),
    (3, "streamrec/services/triage.py", "validate, weigh", 2.2, 4.1),
    (4, "streamrec/model/stream.py", "EfficientRecStream.learn_many", 5.3, 2.5),
    (5, "streamrec/model/user_states.py", "pooled sums, profile, top-M", 9.8, 2.5),
    (6, "streamrec/services/stream_state.py", "DatabaseStreamState", 9.8, 4.1),
    (7, "streamrec/model/recommending.py", "shortlists, vote, re-rank", 9.8, 0.9),
    (8, "streamrec/services/outbound.py", "the recommendation message", 9.8, 5.35),
]


def draw_box(
    axes: Axes,
    x: float,
    y: float,
    title: str,
    detail: str = "",
    *,
    colour: str = "white",
    edge: str = "#333333",
    width: float = BOX_WIDTH,
    number: int | None = None,
    dashed: bool = False,
) -> None:
    axes.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - BOX_HEIGHT / 2),
            width,
            BOX_HEIGHT,
            boxstyle="round,pad=0.04,rounding_size=0.12",
            facecolor=colour,
            edgecolor=edge,
            linewidth=1.3,
            linestyle="--" if dashed else "-",
            zorder=3,
        )
    )
    axes.text(x, y + 0.13, title, ha="center", va="center", fontsize=9.2, zorder=4, weight="bold")
    if detail:
        axes.text(x, y - 0.18, detail, ha="center", va="center", fontsize=8.4, zorder=4)
    if number is not None:
        axes.add_patch(
            plt.Circle((x - width / 2, y + BOX_HEIGHT / 2), 0.2, color="#c0392b", zorder=5)
        )
        axes.text(
            x - width / 2,
            y + BOX_HEIGHT / 2,
            str(number),
            ha="center",
            va="center",
            color="white",
            fontsize=9,
            weight="bold",
            zorder=6,
        )


def draw_arrow(
    axes: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    *,
    label: str = "",
    colour: str = "#c0392b",
    dashed: bool = False,
    bend: float = 0.0,
) -> None:
    axes.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=14,
            color=colour,
            linewidth=1.6,
            linestyle="--" if dashed else "-",
            connectionstyle=f"arc3,rad={bend}",
            shrinkA=2,
            shrinkB=2,
            zorder=2,
        )
    )
    if label:
        axes.text(
            (start[0] + end[0]) / 2,
            (start[1] + end[1]) / 2 + 0.12,
            label,
            ha="center",
            va="bottom",
            fontsize=8,
            color=colour,
            zorder=4,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
        )


def draw_layers(axes: Axes) -> None:
    for layer in LAYERS:
        axes.add_patch(
            Rectangle(
                (0.0, layer.bottom),
                WIDTH,
                layer.top - layer.bottom,
                facecolor=layer.colour,
                edgecolor="#bbbbbb",
                zorder=0,
            )
        )
        axes.text(
            WIDTH - 0.15,
            layer.top - 0.12,
            layer.name,
            ha="right",
            va="top",
            fontsize=10.5,
            weight="bold",
            color="#555555",
        )
        axes.text(
            WIDTH - 0.15,
            layer.top - 0.45,
            layer.imports,
            ha="right",
            va="top",
            fontsize=8.2,
            color="#666666",
            style="italic",
        )


def draw_path(axes: Axes) -> None:
    centre = {number: (x, y) for number, _, _, x, y in PATH}
    for number, title, detail, x, y in PATH:
        draw_box(axes, x, y, title, detail, number=number)
    half_height = BOX_HEIGHT / 2 + 0.05
    half_width = BOX_WIDTH / 2 + 0.05

    def below(number: int) -> tuple[float, float]:
        return centre[number][0], centre[number][1] - half_height

    def above(number: int) -> tuple[float, float]:
        return centre[number][0], centre[number][1] + half_height

    def left(number: int) -> tuple[float, float]:
        return centre[number][0] - half_width, centre[number][1]

    def right(number: int) -> tuple[float, float]:
        return centre[number][0] + half_width, centre[number][1]

    # Kafka, beside the consumer process.
    draw_box(axes, 1.4, 7.0, "interactions topic", "keyed by user id", colour="#fff7cc", width=2.3)
    draw_box(axes, 9.8, 7.0, "recommendations topic", "keyed by user id", colour="#fff7cc")
    draw_box(
        axes,
        5.3,
        8.3,
        "consumers/interaction_consumer.py",
        "the loop over these topics, IngestService its handler",
        width=4.6,
    )
    draw_arrow(axes, (5.3, 7.9), above(1), colour="#777777", label="runs")
    draw_arrow(axes, (2.6, 7.0), left(1), label="records")
    draw_arrow(axes, below(1), above(2), label="apply(records)")
    draw_arrow(axes, left(2), above(3), label="triage", bend=0.2)
    draw_arrow(axes, below(3), left(4), label="valid events", bend=0.25)
    draw_arrow(axes, below(2), above(4), label="learn_many")
    draw_arrow(axes, right(4), left(5), label="re-embed")
    draw_arrow(axes, above(5), below(6))
    axes.text(9.7, 3.2, "store; add deltas", ha="right", fontsize=8, color="#c0392b")
    draw_arrow(axes, (5.3 + half_width, 2.3), left(7), label="refresh; vote", bend=-0.15)
    draw_arrow(axes, right(2), left(8), label="the votes")
    draw_arrow(axes, (8.6, 5.8), (6.6, 6.55), label="outbound messages", bend=0.15)
    draw_arrow(axes, right(1), left_of_topic(), label="publish; flush")


def left_of_topic() -> tuple[float, float]:
    return 9.8 - BOX_WIDTH / 2 - 0.05, 7.0


def draw_state_port(axes: Axes) -> None:
    port_x = 15.2
    draw_box(
        axes,
        port_x,
        2.1,
        "StreamState (port)",
        "declared in streamrec/model/stream.py",
        edge="#2c3e50",
        width=4.0,
        dashed=True,
    )
    draw_box(
        axes,
        port_x,
        0.85,
        "InMemoryStreamState",
        "streamrec/model/memory_state.py",
        edge="#2c3e50",
        width=4.0,
    )
    axes.text(
        port_x,
        0.3,
        "for streamrec eval, the trainer's judge, in-process runs",
        ha="center",
        va="center",
        fontsize=7.8,
        color="#2c3e50",
    )
    draw_arrow(axes, (port_x, 1.3), (port_x, 1.65), colour="#2c3e50", dashed=True)
    axes.text(port_x + 0.1, 1.48, "implements", fontsize=8, color="#2c3e50", va="center")
    draw_arrow(
        axes,
        (9.8 + BOX_WIDTH / 2 + 0.05, 3.95),
        (port_x - 1.2, 2.55),
        colour="#2c3e50",
        dashed=True,
        label="implements",
    )
    draw_box(
        axes,
        port_x,
        4.1,
        "PostgreSQL (or SQLite)",
        "the batch's transaction",
        colour="#f0e6ff",
        edge="#6c3483",
        width=3.4,
    )
    draw_arrow(
        axes,
        (9.8 + BOX_WIDTH / 2 + 0.05, 4.2),
        (port_x - 1.75, 4.2),
        colour="#6c3483",
        label="UnitOfWork",
    )


def main() -> None:
    figure, axes = plt.subplots(figsize=(WIDTH * 0.82, HEIGHT * 0.82))
    axes.set_xlim(0, WIDTH)
    axes.set_ylim(0, HEIGHT)
    axes.axis("off")
    draw_layers(axes)
    draw_path(axes)
    draw_state_port(axes)
    axes.set_title(
        "An event's path from the interactions topic to the recommendations topic "
        "(red, numbered), the layers, and the state port",
        fontsize=11.5,
    )
    figure.tight_layout()
    figure.savefig(OUTPUT, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main()
