"""Process-wide settings of a consumer process, applied once at start-up.

A consumer is a long-running batch loop on a machine it shares with the database (and often
with other consumers), so two interpreter defaults cost it throughput:

- torch's and numpy's (OpenBLAS) thread pools: a batch is a few small matrix products, and
  extra threads only compete with the database for the same cores. OpenBLAS threads also
  spin while they wait for work: with its default of one thread per core, the consumer
  burnt 1.7 ms of CPU per event where one thread needs 0.6-0.9 (batches of 100,
  ``consumer_profile``).
- CPython's cyclic garbage collector: each batch allocates hundreds of thousands of
  short-lived objects (rows, dicts, floats), almost all freed by reference counting. With the
  default generation-0 threshold of 700 allocations the collector still ran about 110 times
  per 1,000-event batch (counted with ``gc.callbacks`` around the batches of ``python -m
  streamrec.benchmarks.consumer_profile``; docs/performance.md). A higher threshold lets
  those objects die first, and ``gc.freeze`` moves what start-up built (modules, settings,
  the SQLAlchemy metadata) out of the collector's sight for good.

>>> import gc, torch
>>> from threadpoolctl import threadpool_info, threadpool_limits
>>> previous = gc.get_threshold(), torch.get_num_threads(), threadpool_info()
>>> prepare_consumer_process()
>>> gc.get_threshold()[0] >= 10_000, torch.get_num_threads()
(True, 1)
>>> {pool["num_threads"] for pool in threadpool_info()}
{1}

The example gives the test process its settings back:

>>> thresholds, torch_threads, blas_pools = previous
>>> gc.set_threshold(*thresholds); gc.unfreeze(); torch.set_num_threads(torch_threads)
>>> _ = threadpool_limits(limits={pool["prefix"]: pool["num_threads"] for pool in blas_pools})
"""

from __future__ import annotations

import gc

# Generation-0 threshold: far above one batch's surviving garbage, so collections happen a
# few times per thousand batches instead of a hundred times per batch. Cycles still get
# collected; memory held by uncollected cycles between runs stays small (kilobytes).
YOUNG_GENERATION_THRESHOLD = 100_000
OLDER_GENERATION_THRESHOLDS = (50, 100)


def prepare_consumer_process() -> None:
    """One torch and one BLAS thread, and a garbage collector tuned for a batch loop (see
    the module doc)."""
    import numpy  # noqa: F401  (loads OpenBLAS, so that threadpoolctl can find and limit it)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *OLDER_GENERATION_THRESHOLDS)
