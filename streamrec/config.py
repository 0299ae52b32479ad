"""One typed configuration object for every streamrec process.

Settings come from, highest priority first:

1. environment variables named ``STREAMREC_<FIELD>``; nested sections use a double
   underscore, e.g. ``STREAMREC_MODEL__CLUSTERS=43`` or ``STREAMREC_KAFKA__BOOTSTRAP_SERVERS``;
2. an optional TOML file, named by ``STREAMREC_CONFIG_FILE`` or the CLI's ``--config``;
3. the defaults below, which are the embedded setup: a SQLite file in the data directory and
   the local broker started by ``streamrec broker start``.

Every knob is documented here, by its field description; ``streamrec config show`` prints
the effective values with secrets masked. A wrong value fails at start-up with a message that
names the setting.

>>> settings = Settings(model={"clusters": 8})
>>> settings.model.clusters
8
>>> settings.topics.interactions
'interactions'
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self, get_origin

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from streamrec.redaction import MASK, is_secret_name, mask_secrets

CONFIG_FILE_VARIABLE = "STREAMREC_CONFIG_FILE"
# The shortest API token accepted (``api.operator_token``, ``api.read_token``).
MIN_TOKEN_LENGTH = 16


class Section(BaseModel):
    """A settings section: unknown keys are errors, so a typo never passes silently.

    >>> TopicSettings().model_copy(update={"dead_letter": "x"})
    Traceback (most recent call last):
    ...
    ValueError: TopicSettings has no setting dead_letter
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        # pydantic's model_copy does not validate: an unknown name would be kept silently.
        unknown = sorted(set(update or ()) - set(type(self).model_fields))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no setting {', '.join(unknown)}")
        return super().model_copy(update=update, deep=deep)


class KafkaSettings(Section):
    bootstrap_servers: str | None = Field(
        None,
        description="Comma-separated host:port list. Unset means the local broker recorded by "
        "`streamrec broker start` in the data directory.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to the brokers."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism, with a SASL_* security protocol."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (masked on display).")
    consumer_group: str = Field("streamrec-consumers", description="Consumer group id.")
    partitions: int = Field(4, ge=1, le=1024, description="Partitions for topics we create.")
    replication_factor: int = Field(1, ge=1, le=16, description="For topics we create.")
    max_poll_records: int = Field(1_000, ge=1, le=100_000, description="Events per batch.")

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_are_host_port_pairs(cls, servers: str | None) -> str | None:
        if servers is None:
            return None
        listed = [server.strip() for server in servers.split(",")]
        for server in listed:
            _host_and_port(server)
        return ",".join(listed)

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL"):
            missing = [
                name
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs {', '.join(missing)}"
                )
        return self


_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def _host_and_port(server: str) -> tuple[str, int]:
    """``host:port`` or ``[IPv6 address]:port``, checked; ValueError says what is wrong.

    >>> _host_and_port("kafka-1.internal:9092"), _host_and_port("[::1]:9092")
    (('kafka-1.internal', 9092), ('::1', 9092))
    >>> _host_and_port("::::")
    Traceback (most recent call last):
    ...
    ValueError: '::::' is not host:port (e.g. kafka-1:9092, [::1]:9092)
    """
    # Credentials have no place here, but one written as user:password@host is not shown.
    shown = server if "@" not in server else f"***@{server.rpartition('@')[2]}"
    problem = ValueError(f"{shown!r} is not host:port (e.g. kafka-1:9092, [::1]:9092)")
    host, separator, port = server.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        try:
            host = str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise problem from None
    elif not _HOST_NAME.fullmatch(host):
        raise problem
    if not separator or not port.isdigit() or not 0 < int(port) < 65_536:
        raise problem
    return host, int(port)


class TopicSettings(Section):
    interactions: str = Field("interactions", description="Input: interaction events.")
    items: str = Field("items", description="Input: item feature upserts.")
    recommendations: str = Field("recommendations", description="Output, keyed by user id.")
    dead_letters: str = Field("dead-letters", description="Rejected input with the reason.")
    control: str = Field("control", description="Operator commands: retrain, version flips.")


class EventSettings(Section):
    max_event_bytes: int = Field(65_536, ge=256, le=10_485_760, description="Larger is rejected.")
    max_id_length: int = Field(256, ge=1, le=4096, description="Longest user/item/event id.")
    max_dead_letter_payload_bytes: int = Field(
        65_536,
        ge=0,
        le=524_288,
        description="A dead letter (topic message and table row) keeps at most this many "
        "bytes of the rejected payload, with the whole payload's size and SHA-256 beside "
        "them; 0 keeps none. At the default, equal to max_event_bytes, only payloads too "
        "large to be events are cut; the bound keeps every dead letter under the producer's "
        "and broker's 1 MiB message limit.",
    )
    rating_min: float = Field(0.5, description="Lowest explicit rating; maps to weight -1.")
    rating_max: float = Field(5.0, description="Highest explicit rating; maps to weight +1.")
    implicit_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "view": 0.3,
            "click": 0.5,
            "like": 1.0,
            "purchase": 1.0,
            "add_to_cart": 0.7,
            "skip": -0.5,
            "dislike": -1.0,
        },
        description="Preference weight in [-1, 1] of each implicit event type.",
    )
    deduplication_retention_days: float = Field(
        1.0,
        gt=0,
        le=3_650,
        description="How long an interaction event id is remembered after it was first "
        "received: within this window an id seen again is skipped (same content) or "
        "dead-lettered as event_id_reused (other content); older ids are pruned, and a reuse "
        "of one falls back to the (user, item) rule.",
    )

    @model_validator(mode="after")
    def _rating_scale_is_a_range(self) -> EventSettings:
        if not self.rating_min < self.rating_max:
            raise ValueError("rating_min must be below rating_max")
        return self

    @field_validator("implicit_weights")
    @classmethod
    def _weights_in_range(cls, weights: dict[str, float]) -> dict[str, float]:
        for event_type, weight in weights.items():
            if not -1.0 <= weight <= 1.0:
                raise ValueError(f"weight of {event_type!r} must be in [-1, 1], got {weight}")
        return weights


class ModelSettings(Section):
    """What a model version is made of: stored with the version when it is trained
    (``streamrec.model.architecture.Architecture``), so a change needs a new training."""

    hash_buckets: int = Field(2**16, ge=16, le=2**24, description="Rows of the hashed id table.")
    feature_buckets: int = Field(
        4096, ge=16, le=2**20, description="Rows of the hashed feature/demographic token tables."
    )
    feature_dim: int = Field(16, ge=1, le=1024, description="Size of a feature token embedding.")
    item_dim: int = Field(64, ge=2, le=1024, description="Item embedding size d.")
    profile_dim: int = Field(64, ge=2, le=1024, description="User profile size dz.")
    hidden_dim: int = Field(128, ge=2, le=4096, description="Hidden width of the MLPs.")
    clusters: int = Field(43, ge=1, le=4096, description="Number of soft clusters K.")
    cluster_head: Literal["sigmoid", "centroid"] = Field(
        "centroid", description="Paper's sigmoid layer, or ELCRec-style learnable centroids."
    )
    centroid_temperature: float = Field(
        0.1, gt=0, le=10, description="Softness of the centroid head's memberships."
    )
    pooling_weight: Literal["preference", "shifted", "presence"] = Field(
        "shifted",
        description="How a weight w scales h_j in the pooled sum: w itself (the method), "
        "(1 + w) / 2 (default, measured best with votes), or 1 for any interaction; "
        "see docs/model.md.",
    )
    statistics_membership_precision: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="The cluster statistics hold each user's memberships rounded to the "
        "nearest power of 1 + this, so that most events move only their own item's "
        "contributions (streamrec.model.memberships.rounded_memberships); 0 keeps them "
        "unrounded, moving all of a user's items on every event. Stored with each model "
        "version when it is trained: a change applies from the next version.",
    )


class ServingSettings(Section):
    """How the consumers, the API and the evaluation use a model version: read at a process's
    start, a change needs no new training."""

    top_memberships: int = Field(5, ge=1, le=64, description="Memberships used, M.")
    shortlist_length: int = Field(200, ge=1, le=10_000, description="Items per cluster, L.")
    shortlist_weight: Literal["share", "rated_share", "weighted_mean", "shrunk_mean"] = Field(
        "rated_share", description="How a cluster ranks its items; see docs/model.md."
    )
    decay_half_life_days: float | None = Field(
        None,
        gt=0,
        description=(
            "Half-life, in event time, of a contribution to the cluster statistics (forward "
            "decay from the version's landmark); unset is no decay. A version's statistics "
            "hold one setting: change it with a new version (train or rebuild)."
        ),
    )
    recommendations: int = Field(20, ge=1, le=1000, description="Items published per user, N.")
    shortlist_refresh_seconds: float = Field(
        1.0,
        ge=0,
        description="A consumer recomputes the shortlists its batches changed at most this "
        "often (0: every batch); the statistics are updated in every batch. See "
        "docs/performance.md.",
    )
    pooling_half_life_seconds: float | None = Field(
        None,
        gt=0,
        description="Recency-weighted pooling: each interaction's pooled term and count "
        "are multiplied by 2^(-age/h), age = seconds before the user's newest event; unset "
        "is no recency weighting. See docs/model.md.",
    )
    rerank: bool = Field(
        True,
        description="Order the clusters' candidates by the retrieval score (P z_u) . t_j "
        "plus rerank_vote_weight * log(vote) instead of their votes; see docs/model.md.",
    )
    rerank_vote_weight: float = Field(
        0.5,
        ge=0,
        description="Weight of the log of the clusters' vote in the re-ranking score "
        "(0: the retrieval score alone).",
    )

    # Short-term item neighbours (streamrec.model.item_neighbours): a second candidate
    # source beside the cluster shortlists, fused with the vote by rank.
    neighbours: bool = Field(
        False,
        description="Add the item neighbours of the user's recent items to the cluster "
        "vote. The co-occurrence counts are kept only while this is on (they start from "
        "the events learned after it is turned on). See docs/model.md.",
    )
    neighbour_history: int = Field(
        20,
        ge=1,
        le=200,
        description="H: a new item counts one co-occurrence with each of the user's H "
        "previous items, and candidates come from the user's H most recent items.",
    )
    neighbour_count: int = Field(
        200, ge=1, le=1000, description="k: the most co-occurring items read per recent item."
    )
    neighbour_weight: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Weight of the neighbours' ranks in the fusion with the vote's "
        "(1 - weight); see streamrec.model.rank_fusion.",
    )
    neighbour_half_life_items: float | None = Field(
        5.0,
        gt=0,
        description="A recent item's co-occurrences weigh 2^(-position / this), position "
        "0 being the newest; unset weighs them alike.",
    )

    # Decayed item popularity from the stream (streamrec.model.decayed_popularity): the
    # new-user fallback, and a third candidate source fused by rank.
    popularity_fallback: bool = Field(
        False,
        description="Serve a user without a profile the items of largest decayed "
        "popularity instead of the vote of the heaviest clusters. See docs/model.md.",
    )
    popularity_weight: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Weight of the decayed popularity's ranks in the fusion with the "
        "vote's and the neighbours' (0: not a candidate source); see "
        "streamrec.model.rank_fusion.",
    )
    popularity_half_life_hours: float = Field(
        720.0,
        gt=0,
        description="Half-life, in event time, of an event's contribution to an item's "
        "decayed popularity (720: 30 days). The scores are kept only while the fallback or "
        "the source is on (they start from the events learned after it is turned on).",
    )


class TrainingSettings(Section):
    seed: int = Field(0, description="Seed of initialisation, sampling and halves.")
    steps: int = Field(1000, ge=1, description="Optimiser steps from scratch.")
    fine_tune_steps: int = Field(150, ge=1, description="Optimiser steps of a fine-tune.")
    users_per_step: int = Field(256, ge=4, description="Users sampled per step.")
    learning_rate: float = Field(
        3e-3, gt=0, description="Adam's initial step size; decays to 0 on a cosine schedule."
    )
    margin: float = Field(1.0, gt=0, description="Margin of the triplet loss on profiles.")
    distance: Literal["l2", "cosine"] = Field(
        "l2", description="Distance between profiles in the triplet loss."
    )
    balance_weight: float = Field(0.1, ge=0, description="Weight of the cluster-health term.")
    consistency_weight: float = Field(
        1.0, ge=0, description="Within the health term: agreement of a user's two halves."
    )
    attribute_rate: float = Field(
        0.5, ge=0, le=1, description="Share of anchors that see the user's demographics."
    )
    retrieval_weight: float = Field(
        4.0, ge=0, description="Weight of the loss that makes a profile predict held-out items."
    )
    retrieval_negatives: Literal["batch", "catalogue"] = Field(
        "batch",
        description="The retrieval softmax runs over the step's items, or every training item.",
    )
    popularity_correction: bool = Field(
        False,
        description="Subtract log popularity from the batch softmax's logits (logQ correction).",
    )
    input_dropout: float = Field(
        0.0, ge=0, lt=1, description="Share of a view's interactions hidden from its encoder."
    )
    retrieval_targets: Literal["other_half", "whole_set"] = Field(
        "other_half",
        description="What each view's profile predicts: the items of the user's other half "
        "(its own hidden), or all the user's items, its own included (as Mult-DAE "
        "reconstructs its input).",
    )
    retrieval_split: Literal["random", "time"] = Field(
        "random",
        description="How a user's set is split into two views: at random into halves, or in "
        "time at a random point, the older view then predicting the item that came next "
        "(a next-item objective for sequences).",
    )
    retrieval_user_weight: Literal["equal", "targets"] = Field(
        "targets",
        description="Each user's retrieval loss counts in proportion to the user's number of "
        "targets (default, as Mult-DAE's summed likelihood does; measured better on every "
        "dataset, see docs/model.md), or every user the same.",
    )
    variational_weight: float = Field(
        0.0,
        ge=0,
        description="KL weight of noisy profiles in training (a VAE variant); 0 is off.",
    )
    max_interactions_per_user: int = Field(
        256, ge=2, description="A sampled user's set is cut to this many random interactions."
    )


class TrainerSettings(Section):
    schedule: str = Field(
        "interval:3600", description="'interval:SECONDS' or a crontab line, e.g. 'cron:0 3 * * *'."
    )
    promotion_tolerance: float = Field(
        0.01, ge=0, description="A candidate may score this much (absolute P@N) below active."
    )
    min_new_events: int = Field(1_000, ge=0, description="Fewer new events skip the run.")
    rebuild_chunk_users: int = Field(2_000, ge=1, description="Users per rebuild transaction.")
    drift_min_interval_seconds: int = Field(3600, ge=0, description="Rate limit of drift runs.")

    @field_validator("schedule")
    @classmethod
    def _schedule_is_known(cls, schedule: str) -> str:
        kind, _, rest = schedule.partition(":")
        rest = rest.strip()
        if kind not in {"interval", "cron"} or not rest:
            raise ValueError("must be 'interval:SECONDS' or 'cron:<crontab line>'")
        if kind == "interval" and not (rest.isdigit() and int(rest) >= 1):
            raise ValueError("interval must be a whole number of seconds, at least 1")
        if kind == "cron":
            # The trainer builds the same trigger (trainer.schedule): checked here, a wrong
            # line fails when the settings load, not when the trainer starts.
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(rest)
            except ValueError as error:
                raise ValueError(f"crontab line {rest!r}: {error}") from None
        return schedule


class ConsumerSettings(Section):
    user_cache_size: int = Field(
        10_000,
        ge=0,
        le=10_000_000,
        description="Users whose interactions and state a consumer keeps in memory after "
        "writing them, checked against the database by one token per user instead of read "
        "back (0 reads every user every batch). A kept user costs about 2 KB plus 350 bytes "
        "per interaction (10,000 users of 50 interactions: about 190 MB).",
    )


class TimeoutSettings(Section):
    """Every wait of a streamrec process: on the broker, the database, a retry, a peer."""

    kafka_session_ms: int = Field(
        10_000, ge=1_000, le=300_000, description="A consumer silent this long leaves the group."
    )
    kafka_heartbeat_ms: int = Field(
        3_000,
        ge=100,
        le=60_000,
        description="Consumer heartbeat period; a third of kafka_session_ms.",
    )
    kafka_poll_ms: int = Field(200, ge=1, le=60_000, description="Longest wait for a batch.")
    kafka_fetch_max_wait_ms: int = Field(
        100,
        ge=0,
        le=60_000,
        description="Longest the broker holds a fetch with no new data (Kafka's default 500 "
        "ms adds that much to the event-to-recommendation latency at low rates).",
    )
    kafka_bootstrap_ms: int = Field(
        10_000,
        ge=100,
        le=600_000,
        description="How long a Kafka client waits for the first metadata answer before the "
        "broker is reported down.",
    )
    kafka_topics_ready_seconds: float = Field(
        10.0, gt=0, le=600, description="How long topics we create may take to get leaders."
    )
    kafka_log_end_fetch_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="How long a fetch may take to confirm a partition's log end before the "
        "listed end is believed.",
    )
    publish_seconds: float = Field(
        30.0,
        gt=0,
        le=3_600,
        description="Longest wait for the broker to acknowledge what a consumer or the "
        "trainer publishes; a longer one fails the batch, which is retried.",
    )
    control_poll_ms: int = Field(
        500, ge=1, le=60_000, description="Longest wait of one read of the control topic."
    )
    database_connect_seconds: int = Field(
        10,
        ge=1,
        le=600,
        description="PostgreSQL connect timeout (a `connect_timeout` in the database URL wins).",
    )
    sqlite_busy_ms: int = Field(
        30_000,
        ge=0,
        le=3_600_000,
        description="How long a SQLite writer waits for another's lock before it fails.",
    )
    rebuild_barrier_seconds: float = Field(
        60.0,
        gt=0,
        le=3_600,
        description="How long a version switch's rebuild waits for the transactions that "
        "began before it.",
    )
    liveness_seconds: float = Field(
        120.0,
        gt=0,
        le=86_400,
        description="A consumer or trainer whose loop has not beaten for this long is "
        "reported not live by its /healthz endpoint.",
    )
    retry_initial_seconds: float = Field(
        0.2,
        gt=0,
        le=3_600,
        description="First delay before a consumer retries a batch that failed transiently "
        "(a broker or database away); each next delay is retry_multiplier times longer.",
    )
    retry_multiplier: float = Field(
        2.0, ge=1, le=100, description="Growth of the delays between retries of a batch."
    )
    retry_maximum_seconds: float = Field(
        30.0, gt=0, le=3_600, description="Longest delay between retries of a batch."
    )
    control_topic_retry_seconds: float = Field(
        30.0,
        gt=0,
        le=3_600,
        description="Delay between the trainer's attempts to reach an unavailable control topic.",
    )


class ObservabilitySettings(Section):
    metrics_port: int = Field(9308, ge=0, le=65535, description="0 disables the HTTP endpoint.")
    log_format: Literal["json", "text"] = Field("text", description="Structured or human logs.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe level logged."
    )


class ApiSettings(Section):
    """``streamrec serve``: the read API and the operator dashboard (docs/api.md)."""

    host: str = Field("127.0.0.1", description="Address `streamrec serve` listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port of `streamrec serve`.")
    operator_token: SecretStr | None = Field(
        None,
        description="Signs an operator in on the dashboard, whose train and roll-back buttons "
        "need it; unset disables them. Masked on display.",
    )
    read_token: SecretStr | None = Field(
        None,
        description="If set, the read API wants `Authorization: Bearer <token>` (this or the "
        "operator token) and the dashboard a sign-in; unset leaves reading open. Masked.",
    )
    results_dir: Path = Field(
        Path("bench/results"), description="Where the dashboard finds the quality plots (PNG)."
    )

    @field_validator("operator_token", "read_token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        # A short token is guessable; the dashboard compares in constant time, not slowly.
        if token is not None and len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters")
        return token


class Settings(BaseSettings):
    """Everything a streamrec process can be told."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMREC_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Field(Path(".streamrec"), description="SQLite file, broker pid, models.")
    datasets_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("streamrec")) / "datasets",
        description="Where dataset names other than the bundled ml-latest-small are looked up.",
        # The reference shows where it is, not this machine's home directory.
        json_schema_extra={"documented_default": "<user data directory>/streamrec/datasets"},
    )
    database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. "
        "Unset means SQLite at <data_dir>/streamrec.db.",
    )
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    events: EventSettings = EventSettings()
    model: ModelSettings = ModelSettings()
    serving: ServingSettings = ServingSettings()
    training: TrainingSettings = TrainingSettings()
    trainer: TrainerSettings = TrainerSettings()
    consumer: ConsumerSettings = ConsumerSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    api: ApiSettings = ApiSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file: operators fix one value without editing files.
        return env_settings, init_settings, file_secret_settings

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'streamrec.db').as_posix()}"


def changed_model_settings(settings: Settings) -> dict[str, Any]:
    """The model, serving and training settings that differ from their defaults, by dotted
    name: what a measured result needs beside it to be reproduced.

    >>> changed_model_settings(Settings(model={"clusters": 100}, serving={"rerank": False}))
    {'model.clusters': 100, 'serving.rerank': False}
    """
    changed: dict[str, Any] = {}
    sections = (
        ("model", settings.model),
        ("serving", settings.serving),
        ("training", settings.training),
    )
    for name, section in sections:
        defaults = type(section)().model_dump()
        for key, value in section.model_dump().items():
            if value != defaults[key]:
                changed[f"{name}.{key}"] = value
    return changed


class ConfigurationError(Exception):
    """A setting is wrong; the message names it, in one line."""


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from the environment, an optional TOML file and ``overrides``.

    Raises ConfigurationError with a one-line message that names each wrong setting.
    """
    config_file = config_file or os.environ.get(CONFIG_FILE_VARIABLE)
    values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigurationError(f"config file {path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigurationError(f"config file {path}: {error}") from None
    _merge(values, overrides)
    return settings_from(values)


def settings_from(values: dict[str, Any]) -> Settings:
    """``Settings`` of ``values`` (by section) over the environment. Raises
    ConfigurationError with a one-line message that names each wrong setting."""
    try:
        return Settings(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'settings'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None
    except SettingsError as error:
        # pydantic-settings decodes a dict or list setting from its variable as JSON and
        # names only the section when that fails: name the variable and the JSON error.
        raise ConfigurationError(f"invalid settings: {_unparseable_variable() or error}") from None


def _unparseable_variable() -> str | None:
    """Which ``STREAMREC_*`` variable of a dict, list or section setting is not valid JSON,
    and why, if one is not."""
    prefix = Settings.model_config.get("env_prefix", "")
    delimiter = Settings.model_config.get("env_nested_delimiter") or "__"
    for variable, value in sorted(os.environ.items()):
        if not variable.upper().startswith(prefix):
            continue
        names = variable[len(prefix) :].lower().split(delimiter)
        if _holds_json(Settings, names):
            try:
                json.loads(value)
            except ValueError as error:
                return f"{variable} is not valid JSON ({error})"
    return None


def _holds_json(model: type[BaseModel], names: list[str]) -> bool:
    """Whether the setting at ``names`` under ``model`` is read from JSON: a dict, a list or a
    whole section."""
    field = model.model_fields.get(names[0])
    if field is None:
        return False
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return len(names) == 1 or _holds_json(annotation, names[1:])
    return len(names) == 1 and get_origin(annotation) in (dict, list)


def _merge(target: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with every secret masked (for display and logs):
    a setting named like a secret is shown as ``***``, and every text goes through
    ``streamrec.redaction.mask_secrets``, so the database URL keeps its host but not its
    passwords.

    >>> shown = masked(Settings(
    ...     database_url="postgresql+psycopg://app:pw1@db/recs?sslpassword=pw2",
    ...     kafka={"sasl_password": "pw3"},
    ... ))
    >>> shown["database_url"], shown["kafka"]["sasl_password"]
    ('postgresql+psycopg://app:***@db/recs?sslpassword=***', '***')
    """
    shown = settings.model_dump(mode="json")
    shown["database_url"] = settings.effective_database_url
    return _masked_section(shown)


def _masked_section(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: MASK if is_secret_name(name) and value is not None else _masked_value(value)
        for name, value in values.items()
    }


def _masked_value(value: Any) -> Any:
    if isinstance(value, dict):
        return _masked_section(value)
    if isinstance(value, list):
        return [_masked_value(item) for item in value]
    if isinstance(value, str):
        return mask_secrets(value)
    return value


def settings_reference() -> str:
    """Markdown reference of every setting: environment variable, default and meaning.

    docs/configuration.md is this text; a test keeps the two equal.
    """
    lines = [
        "# Configuration reference",
        "",
        "Generated by `streamrec config docs` from `streamrec/config.py`; do not edit by hand.",
        "Environment variables override the TOML file (`--config` or `STREAMREC_CONFIG_FILE`),",
        "which overrides the defaults. In the file, sections are TOML tables (`[model]`).",
        "",
        "`model` is what a model version is made of. It is stored with each version, so a",
        "change needs a new training: `streamrec train dataset` (the trainer's fine-tunes",
        "keep the active version's shape; only `statistics_membership_precision` applies to",
        "their next version). `serving` is how the processes use the active version: a change",
        "takes effect when a process restarts, without retraining. `timeouts` gathers every",
        "wait: on the broker, the database, a retry, the control topic.",
        "",
        "| environment variable | default | meaning |",
        "|---|---|---|",
    ]
    lines += _reference_rows(Settings, prefix="STREAMREC_")
    return "\n".join(lines) + "\n"


def _reference_rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            rows += _reference_rows(annotation, prefix=f"{prefix}{name.upper()}__")
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        default = extra.get("documented_default", field.get_default(call_default_factory=True))
        shown = "" if default is None else f"`{default}`"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name.upper()}` | {shown} | {description} |")
    return rows
