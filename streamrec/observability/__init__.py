"""Observability of a streamrec process: Prometheus metrics, health endpoints, structured logs.

- ``metrics``: ``ConsumerMetrics`` and ``TrainerMetrics``, each on its own CollectorRegistry
  (one per process object, never the global one);
- ``health``: ``Heartbeat`` (liveness: the loop is alive) and ``Readiness`` (ready to serve);
- ``server``: ``ObservabilityServer``, a small HTTP server for /metrics, /healthz and /readyz;
- ``logs``: ``configure_logging`` (JSON lines or text), with secrets masked.

>>> metrics = ConsumerMetrics()
>>> metrics.set_active_model_version(3)
>>> b"streamrec_active_model_version 3.0" in metrics.exposition()
True
"""

from streamrec.observability.health import Heartbeat, Readiness, ReadinessCheck
from streamrec.observability.logs import configure_logging, mask_secrets
from streamrec.observability.metrics import ConsumerMetrics, ProcessMetrics, TrainerMetrics
from streamrec.observability.server import ObservabilityServer

__all__ = [
    "ConsumerMetrics",
    "Heartbeat",
    "ObservabilityServer",
    "ProcessMetrics",
    "Readiness",
    "ReadinessCheck",
    "TrainerMetrics",
    "configure_logging",
    "mask_secrets",
]
