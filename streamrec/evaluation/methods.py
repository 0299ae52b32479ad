"""The methods ``streamrec eval`` can run, by name, and how each is built.

``streamrec`` is the EfficientRec model (streamrec.model); the others are the baselines. A method
that cannot be built here (e.g. ``implicit`` is not installed for ALS) is reported as skipped
with the reason, never a crash.

>>> from pydantic import ValidationError

from streamrec.config import Settings
>>> build_method("ease", MethodOptions(dataset_name="amazon-beauty"), Settings()).regularization
50.0
>>> build_method("ease", MethodOptions(dataset_name="ml-1m"), Settings()).regularization
300.0
>>> build_method("mult-vae", MethodOptions(autoencoder_epochs=3), Settings()).epochs
3
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from streamrec.config import Settings
from streamrec.evaluation.autoencoders import (
    DEFAULT_EPOCHS,
    MultAutoencoderRecommender,
    MultDAERecommender,
    MultVAERecommender,
)
from streamrec.evaluation.baselines import (
    ALSRecommender,
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
)
from streamrec.evaluation.protocol import OfflineRecommender
from streamrec.observability.progress import TrainingProgressBar

STREAMREC = "streamrec"
BASELINES = ("popularity", "item-knn", "ease", "als", "mult-dae", "mult-vae")
METHOD_NAMES = (STREAMREC, *BASELINES)
# EASE's lambda as tuned by its paper's protocol on each family: MovieLens 300, Amazon 50.
EASE_LAMBDA_MOVIELENS = 300.0
EASE_LAMBDA_AMAZON = 50.0
AUTOENCODERS: dict[str, type[MultAutoencoderRecommender]] = {
    "mult-dae": MultDAERecommender,
    "mult-vae": MultVAERecommender,
}
# Mult-DAE/VAE epochs by (method, dataset), the best on validation users
# (``streamrec bench autoencoder-epochs``, bench/results/autoencoder-epochs-*; docs/model.md);
# other datasets get DEFAULT_EPOCHS.
AUTOENCODER_EPOCHS: dict[tuple[str, str], int] = {
    ("mult-dae", "ml-1m"): 80,
    ("mult-vae", "ml-1m"): 100,
    ("mult-dae", "ml-latest-small"): 120,
    ("mult-vae", "ml-latest-small"): 160,
}


class MethodUnavailable(Exception):
    """A method cannot run in this environment; the message says why, in one line."""


@dataclass(frozen=True)
class MethodOptions:
    dataset_name: str = ""
    seed: int = 0
    ease_lambda: float | None = None  # None: by dataset family
    knn_neighbours: int | None = None
    als_factors: int = 64
    threads: int = 1
    progress: bool = True
    clusters: int | None = None  # streamrec's K; None: from the settings
    shortlist_length: int | None = None  # streamrec's L; None: from the settings
    candidates: Literal["shortlists", "catalogue"] = "shortlists"  # what streamrec ranks
    autoencoder_epochs: int | None = None  # Mult-DAE/VAE; None: by dataset (chosen on validation)


def ease_lambda_for(dataset_name: str) -> float:
    return EASE_LAMBDA_AMAZON if dataset_name.startswith("amazon") else EASE_LAMBDA_MOVIELENS


def autoencoder_epochs_for(method: str, dataset_name: str) -> int:
    """The training epochs of Mult-DAE or Mult-VAE on a dataset: as chosen on its validation
    users, else DEFAULT_EPOCHS.

    >>> autoencoder_epochs_for("mult-vae", "ml-latest-small"), autoencoder_epochs_for("a", "b")
    (160, 100)
    """
    return AUTOENCODER_EPOCHS.get((method, dataset_name), DEFAULT_EPOCHS)


def build_method(name: str, options: MethodOptions, settings: Settings) -> OfflineRecommender:
    """A fresh, unfitted recommender for the method name; MethodUnavailable if it cannot run."""
    if name == "popularity":
        return PopularityRecommender()
    if name == "item-knn":
        return ItemKNNRecommender(neighbours=options.knn_neighbours)
    if name == "ease":
        return EASERecommender(
            regularization=options.ease_lambda or ease_lambda_for(options.dataset_name)
        )
    if name == "als":
        try:
            return ALSRecommender(
                factors=options.als_factors, seed=options.seed, threads=options.threads
            )
        except ImportError as error:
            raise MethodUnavailable(
                f"ALS skipped: the implicit library is missing ({error})"
            ) from None
    if name in AUTOENCODERS:
        epochs = options.autoencoder_epochs
        if epochs is None:
            epochs = autoencoder_epochs_for(name, options.dataset_name)
        return AUTOENCODERS[name](epochs=epochs, seed=options.seed, progress=options.progress)
    if name == STREAMREC:
        return _streamrec(options, settings)
    raise MethodUnavailable(f"unknown method {name!r}; known: {', '.join(METHOD_NAMES)}")


def _streamrec(options: MethodOptions, settings: Settings) -> OfflineRecommender:
    try:
        from streamrec.model.table_replay import EfficientRecRecommender
    except ImportError as error:
        raise MethodUnavailable(
            f"streamrec skipped: the model cannot be imported ({error})"
        ) from None
    model_overrides: dict[str, int] = {}
    if options.clusters is not None:
        model_overrides["clusters"] = options.clusters
    serving_overrides: dict[str, int] = {}
    if options.shortlist_length is not None:
        serving_overrides["shortlist_length"] = options.shortlist_length
    # Validated copies: a K or L out of range fails here with the setting's name.
    try:
        model_settings = type(settings.model).model_validate(
            {**settings.model.model_dump(), **model_overrides}
        )
        serving_settings = type(settings.serving).model_validate(
            {**settings.serving.model_dump(), **serving_overrides}
        )
        training_settings = type(settings.training).model_validate(
            {**settings.training.model_dump(), "seed": options.seed}
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()
        )
        raise MethodUnavailable(f"streamrec skipped: invalid model settings ({problems})") from None
    recommender = EfficientRecRecommender(
        model_settings,
        serving_settings,
        training_settings,
        training_observer=TrainingProgressBar() if options.progress else None,
        candidates=options.candidates,
    )
    recommender.name = STREAMREC
    return recommender
