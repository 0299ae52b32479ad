"""The sweep plot: streamrec quality against shortlist length L and number of clusters K.

Drawn with matplotlib's Agg backend, so it works without a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from streamrec.evaluation.splits import COLD_USERS, LEAVE_ONE_OUT
from streamrec.evaluation.sweep import SweepPoint

# The metrics plotted for each protocol: the two that best summarise its ranking quality, at
# the cutoff its quality target is stated at (P@50; HR@20 on leave-one-out).
SWEEP_METRICS = {COLD_USERS: ("precision@50", "ndcg@50"), LEAVE_ONE_OUT: ("hr@20", "ndcg@20")}
# Reference methods are told apart by colour and dash pattern, neither alone enough in grey.
REFERENCE_COLOURS = ("0.25", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "0.55")
REFERENCE_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))
# More tick labels than this on one axis are turned so they do not run into each other.
MANY_TICKS = 6


def plot_sweep(
    points: Sequence[SweepPoint],
    protocol: str,
    title: str,
    path: Path,
    references: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Per metric, two panels (metric vs L, one line per K; metric vs K, one line per L),
    saved as PNG. references (method name -> metrics, e.g. the baselines of the same run)
    are drawn as dashed horizontal lines for scale, each named in the figure's legend (text
    written beside close lines overlapped)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import NullLocator

    metric_names = SWEEP_METRICS[protocol]
    references = references or {}
    clusters = sorted({point.clusters for point in points})
    lengths = sorted({point.shortlist_length for point in points})
    by_pair = {(point.clusters, point.shortlist_length): point for point in points}
    figure, axes = pyplot.subplots(
        len(metric_names), 2, figsize=(11, 4 * len(metric_names) + 1), layout="constrained"
    )
    reference_handles: dict[str, object] = {}
    for row, metric in enumerate(metric_names):
        against_length, against_clusters = axes[row][0], axes[row][1]
        for k in clusters:
            shown = [length for length in lengths if (k, length) in by_pair]
            values = [by_pair[k, length].metrics[metric] for length in shown]
            against_length.plot(shown, values, marker="o", label=f"K={k}")
        for length in lengths:
            shown = [k for k in clusters if (k, length) in by_pair]
            values = [by_pair[k, length].metrics[metric] for k in shown]
            against_clusters.plot(shown, values, marker="o", label=f"L={length}")
        against_length.set(xlabel="shortlist length L", ylabel=metric, xscale="log")
        against_clusters.set(xlabel="clusters K", ylabel=metric)
        # Ticks at the values measured, written plainly (not 2x10^2), thinned when many.
        for axis, values in ((against_length, lengths), (against_clusters, clusters)):
            axis.set_xticks(values, labels=[str(value) for value in values])
            axis.xaxis.set_minor_locator(NullLocator())
            if len(values) > MANY_TICKS:
                axis.tick_params(axis="x", labelrotation=45)
        for axis in (against_length, against_clusters):
            for number, (method, method_metrics) in enumerate(references.items()):
                if metric in method_metrics:
                    reference_handles[method] = axis.axhline(
                        method_metrics[metric],
                        linestyle=REFERENCE_STYLES[number % len(REFERENCE_STYLES)],
                        linewidth=1.0,
                        color=REFERENCE_COLOURS[number % len(REFERENCE_COLOURS)],
                        label=method,
                    )
            axis.grid(alpha=0.3)
            # K or L lines here; the references share one legend below the panels.
            curves = [line for line in axis.get_lines() if line.get_label() not in references]
            axis.legend(handles=curves, fontsize="small")
    if reference_handles:
        figure.legend(
            handles=list(reference_handles.values()),
            labels=[f"{method} (same split)" for method in reference_handles],
            loc="outside lower center",
            ncol=min(len(reference_handles), 5),
            fontsize="small",
            title="references",
        )
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path
