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


def plot_sweep(
    points: Sequence[SweepPoint],
    protocol: str,
    title: str,
    path: Path,
    references: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Per metric, two panels (metric vs L, one line per K; metric vs K, one line per L),
    saved as PNG. references (method name -> metrics, e.g. the baselines of the same run)
    are drawn as dashed horizontal lines for scale."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    metric_names = SWEEP_METRICS[protocol]
    clusters = sorted({point.clusters for point in points})
    lengths = sorted({point.shortlist_length for point in points})
    by_pair = {(point.clusters, point.shortlist_length): point for point in points}
    figure, axes = pyplot.subplots(len(metric_names), 2, figsize=(11, 4 * len(metric_names)))
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
        for axis in (against_length, against_clusters):
            for method, method_metrics in (references or {}).items():
                if metric in method_metrics:
                    value = method_metrics[metric]
                    axis.axhline(value, linestyle="--", linewidth=0.8, color="grey")
                    axis.annotate(
                        method,
                        (0.01, value),
                        xycoords=("axes fraction", "data"),
                        fontsize="x-small",
                        color="grey",
                    )
            axis.grid(alpha=0.3)
            axis.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path
