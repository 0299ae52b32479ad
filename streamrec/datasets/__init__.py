"""Dataset loaders: each format becomes one event stream with item features and user attributes.

``load_dataset(name_or_path, settings)`` is the entry point; see ``registry`` for the names.
"""

from streamrec.datasets.base import Dataset, InteractionTable, RatingScale
from streamrec.datasets.registry import load_dataset

__all__ = ["Dataset", "InteractionTable", "RatingScale", "load_dataset"]
