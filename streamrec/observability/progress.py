"""A progress bar for training runs shown to a person (``streamrec train``, ``streamrec eval``).

The training loop in ``streamrec.model`` reports to a ``TrainingObserver`` and draws nothing
itself; this is the observer for a terminal.

>>> from streamrec.model.cluster_report import cluster_report
>>> from streamrec.model.training.trainer import StepLosses
>>> import numpy as np
>>> bar = TrainingProgressBar(disable=True)
>>> bar.started(2)
>>> losses = StepLosses(1.0, 0.5, 0.1, 0.1, 0.1, 0.2)
>>> bar.stepped(0, losses, cluster_report(np.full((4, 3), 0.5), 2))
>>> bar.stepped(1, losses, None)
>>> bar.postfix["loss"]
'1.000'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from streamrec.model.cluster_report import ClusterReport
    from streamrec.model.training.trainer import StepLosses, TrainingReport


class TrainingProgressBar:
    """Steps as a tqdm bar, with the loss and the cluster health beside it; the final
    clusters' summary printed at the end."""

    def __init__(self, *, disable: bool = False) -> None:
        self._disable = disable
        self._bar: tqdm | None = None
        self.postfix: dict[str, str] = {}

    def started(self, steps: int) -> None:
        self._bar = tqdm(total=steps, disable=self._disable, desc="training", unit="step")

    def stepped(self, step: int, losses: StepLosses, clusters: ClusterReport | None) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        if clusters is not None:
            self.postfix = {
                "loss": f"{losses.total:.3f}",
                "triplet": f"{losses.triplet:.3f}",
                "largest": f"{clusters.largest_share:.0%}",
                "empty": str(clusters.empty_clusters),
                "entropy": f"{clusters.mean_entropy:.2f}",
            }
            self._bar.set_postfix(self.postfix)

    def finished(self, report: TrainingReport) -> None:
        if self._bar is not None:
            self._bar.close()
        if not self._disable:
            tqdm.write(report.clusters.summary())
