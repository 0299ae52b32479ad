"""streamrec: a streaming, incremental recommender built on EfficientRec.

The package is the domain and its edges; ``consumers`` and ``trainer`` are thin processes
that wire it to Kafka and the clock.
"""

__version__ = "0.1.0"
