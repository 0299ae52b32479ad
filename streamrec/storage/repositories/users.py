"""Users: their demographics (one row per user) and their derived state per model version.

State is keyed by (model_version, user_id), so a rebuild under a new version can write beside
the version that keeps serving.

>>> import numpy as np
>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> from streamrec.state import ModelStatus, ModelVersion
>>> with UnitOfWork(create_memory_database()) as uow:
...     version = uow.models.add(ModelVersion(None, ModelStatus.ACTIVE, {}, b""))
...     user = UserProfile.new("u1", dimension=2, model_version=version)
...     user.pooled_sum += np.float32(0.25)
...     _ = uow.users.save_many([user])
...     uow.users.get_many(["u1"], version)["u1"].pooled_sum.tolist()
[0.25, 0.25]
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import Row as SqlRow
from sqlalchemy import delete, func, select

from streamrec.state import UserProfile
from streamrec.storage.codecs import decode_pairs, decode_vector, encode_pairs, encode_vector
from streamrec.storage.errors import InvalidRecordError
from streamrec.storage.repositories.base import Repository
from streamrec.storage.statements import Row, chunked, is_one_of, upsert
from streamrec.storage.tables import UserRow, UserStateRow, table_of

_USERS = table_of(UserRow)
_STATES = table_of(UserStateRow)
_STATE_VALUES = (
    "pooled_sum",
    "profile",
    "nonzero_count",
    "interaction_count",
    "top_clusters",
    "last_event_at",
    "updated_at",
    "weighted_count",
    "pooling_reference_time",
    "state_token",
)


def new_state_token() -> int:
    """A random token for a write of user states (see UserStateRow.state_token): 63 bits,
    so that two writers never pick the same one in practice."""
    return secrets.randbits(63)


class UserRepository(Repository):
    def get_many(self, user_ids: Iterable[str], model_version: int) -> dict[str, UserProfile]:
        """The users among ``user_ids`` that have a state under ``model_version``, with their
        stored attributes. Users without one are absent (see ``attributes_many``)."""
        found: dict[str, UserProfile] = {}
        for chunk in chunked(set(user_ids)):
            statement = (
                select(_STATES, _USERS.c.attributes)
                .join(_USERS, _USERS.c.user_id == _STATES.c.user_id)
                .where(
                    _STATES.c.model_version == model_version,
                    is_one_of(self._connection, _STATES.c.user_id, chunk),
                )
            )
            for row in self._connection.execute(statement):
                found[row.user_id] = _profile_from(row)
        return found

    def state_tokens(self, user_ids: Iterable[str], model_version: int) -> dict[str, int | None]:
        """The state token of each user among ``user_ids`` with a state under
        ``model_version``: one small row per user, to tell whether a kept copy is current."""
        found: dict[str, int | None] = {}
        for chunk in chunked(set(user_ids)):
            statement = select(_STATES.c.user_id, _STATES.c.state_token).where(
                _STATES.c.model_version == model_version,
                is_one_of(self._connection, _STATES.c.user_id, chunk),
            )
            found.update({user_id: token for user_id, token in self._connection.execute(statement)})
        return found

    def save_many(
        self,
        profiles: Iterable[UserProfile],
        *,
        users_with_rows: Collection[str] = (),
        state_token: int | None = None,
    ) -> int:
        """Upsert each profile's state under its own ``model_version``. A user row is created
        with the profile's attributes when missing; existing attributes are left alone, since
        they belong to ``save_attributes`` and a rebuild must not overwrite newer ones.
        ``users_with_rows`` names users the caller knows to have a row already (read in the
        same transaction): their row is not written again. The states get ``state_token``
        (default: a new one), which a caller that keeps copies passes to know its own."""
        now = self._clock()
        token = new_state_token() if state_token is None else state_token
        users: list[Row] = []
        states: list[Row] = []
        for profile in profiles:
            if profile.user_id not in users_with_rows:
                users.append(
                    {
                        "user_id": profile.user_id,
                        "attributes": dict(profile.attributes),
                        "attribute_event_keys": None,
                        "updated_at": now,
                    }
                )
            states.append(user_state_row(profile, now, token))
        upsert(self._connection, _USERS, users, key=("user_id",))
        return upsert(
            self._connection,
            _STATES,
            states,
            key=("model_version", "user_id"),
            replace=_STATE_VALUES,
        )

    def attributes_many(self, user_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Stored demographics of the known users among ``user_ids``."""
        found: dict[str, dict[str, str]] = {}
        for chunk in chunked(set(user_ids)):
            statement = select(_USERS.c.user_id, _USERS.c.attributes).where(
                is_one_of(self._connection, _USERS.c.user_id, chunk)
            )
            found.update(
                {row.user_id: dict(row.attributes) for row in self._connection.execute(statement)}
            )
        return found

    def attribute_event_keys_many(
        self, user_ids: Iterable[str]
    ) -> dict[str, dict[str, tuple[float, str]]]:
        """Per known user among ``user_ids``, the (timestamp, event_id) of the event behind
        each stored attribute (those known; see UserRow)."""
        found: dict[str, dict[str, tuple[float, str]]] = {}
        for chunk in chunked(set(user_ids)):
            statement = select(_USERS.c.user_id, _USERS.c.attribute_event_keys).where(
                is_one_of(self._connection, _USERS.c.user_id, chunk)
            )
            for user_id, keys in self._connection.execute(statement):
                found[user_id] = {
                    name: (float(timestamp), str(event_id))
                    for name, (timestamp, event_id) in (keys or {}).items()
                }
        return found

    def save_attributes(
        self,
        attributes: Mapping[str, Mapping[str, str]],
        event_keys: Mapping[str, Mapping[str, tuple[float, str]]] | None = None,
    ) -> int:
        """Replace each user's demographics (merge with the stored ones first to keep them)
        and, if given, the keys of the events behind them (else they become unknown)."""
        now = self._clock()
        rows = [
            {
                "user_id": user_id,
                "attributes": dict(values),
                "attribute_event_keys": None
                if event_keys is None or user_id not in event_keys
                else {name: list(key) for name, key in event_keys[user_id].items()},
                "updated_at": now,
            }
            for user_id, values in attributes.items()
        ]
        return upsert(
            self._connection,
            _USERS,
            rows,
            key=("user_id",),
            replace=("attributes", "attribute_event_keys", "updated_at"),
        )

    def ids(self, *, after: str | None = None, limit: int = 1_000) -> list[str]:
        """Up to ``limit`` known user ids greater than ``after``, sorted: pages for rebuilds."""
        statement = select(_USERS.c.user_id).order_by(_USERS.c.user_id).limit(limit)
        if after is not None:
            statement = statement.where(_USERS.c.user_id > after)
        return list(self._connection.scalars(statement))

    def count(self, model_version: int) -> int:
        """How many users have a state under ``model_version``."""
        statement = select(func.count()).where(_STATES.c.model_version == model_version)
        return self._connection.scalar(statement) or 0

    def delete_version(self, model_version: int) -> int:
        """Drop every user state of ``model_version``; returns how many."""
        statement = delete(_STATES).where(_STATES.c.model_version == model_version)
        return self._connection.execute(statement).rowcount


def user_state_row(profile: UserProfile, now: float, state_token: int) -> Row:
    """The ``user_states`` row of ``profile`` (which must carry its model version)."""
    if profile.model_version is None:
        raise InvalidRecordError(f"user {profile.user_id}: model_version is unset")
    what = f"user {profile.user_id}"
    return {
        "model_version": profile.model_version,
        "user_id": profile.user_id,
        "pooled_sum": encode_vector(profile.pooled_sum, f"{what}: pooled_sum"),
        "profile": None
        if profile.profile is None
        else encode_vector(profile.profile, f"{what}: profile"),
        "nonzero_count": int(profile.nonzero_count),
        "interaction_count": int(profile.interaction_count),
        "top_clusters": encode_pairs(profile.top_clusters),
        "last_event_at": profile.last_event_at,
        "updated_at": now,
        "weighted_count": None if profile.weighted_count is None else float(profile.weighted_count),
        "pooling_reference_time": None
        if profile.pooling_reference_time is None
        else float(profile.pooling_reference_time),
        "state_token": state_token,
    }


def _profile_from(row: SqlRow[Any]) -> UserProfile:
    what = f"user {row.user_id}"
    return UserProfile(
        user_id=row.user_id,
        pooled_sum=decode_vector(row.pooled_sum, f"{what}: pooled_sum"),
        nonzero_count=row.nonzero_count,
        interaction_count=row.interaction_count,
        attributes=dict(row.attributes),
        profile=None if row.profile is None else decode_vector(row.profile, f"{what}: profile"),
        top_clusters=decode_pairs(row.top_clusters, int),
        model_version=row.model_version,
        last_event_at=row.last_event_at,
        weighted_count=row.weighted_count,
        pooling_reference_time=row.pooling_reference_time,
    )
