"""What the chaos tests share: real ``kill -9`` of child processes from the test side, at
moments a seeded RNG picks or at a chosen stage of a batch (``OffsetGate`` holds the batch's
transaction, commit or acknowledgement on a lock the test owns); the consumer's own database
sessions, found by name, for ``pg_terminate_backend``; and the comparison of a run's end
state and recommendations with a clean run of the same input.

Nothing here reaches into the processes under test: they are stopped, killed, made to wait
on a lock, and their database sessions terminated, the way an operating system, another
transaction or a database administrator would.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import SecretStr
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from streamrec.config import ServingSettings, Settings
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.recommending import (
    global_top_clusters,
    reranking_for,
    shortlist_from_statistics,
    vote,
)
from streamrec.model.serving import ModelCache
from streamrec.services.ingest import IngestService
from streamrec.state import ModelStatus, ModelVersion
from streamrec.storage import UnitOfWork
from streamrec.storage.memory import create_memory_database
from tests.fixtures.snapshots import ALL_ITEMS, differences, take_snapshot
from tests.integration.pipeline_support import (
    input_records,
    pipeline_settings,
    read_topic,
)

# Popen.returncode of a child that died of SIGKILL.
KILLED_BY_SIGKILL = -signal.SIGKILL
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.05
# Scores of a recommendation list that agree this closely are the same number summed in
# another order: their items may swap places.
SCORE_TOLERANCE = 1e-5
# Shortlist weights equal to this many decimals are ties, broken by item id.
SHORTLIST_DECIMALS = 9

Ranking = list[tuple[str, float]]


def chaos_settings(kafka_settings: Settings, database_url: str) -> Settings:
    """The pipeline tests' settings, tuned for processes that die: a killed member's
    partitions move after 2 s instead of 6, and every batch refreshes the shortlists it
    changed, so that the stored shortlists always follow the statistics and recommendations
    can be compared between runs cut into different batches."""
    settings = pipeline_settings(
        kafka_settings,
        database_url,
        timeouts={"kafka_session_ms": 2_000, "kafka_heartbeat_ms": 500},
    )
    return settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"shortlist_refresh_seconds": 0.0})}
    )


def with_session_name(settings: Settings, name: str) -> Settings:
    """``settings`` whose database sessions carry ``application_name`` = ``name``, so that
    the test can find (and terminate) exactly this process's sessions in pg_stat_activity,
    whatever else uses the server."""
    url = make_url(settings.effective_database_url).update_query_dict({"application_name": name})
    return settings.model_copy(
        update={"database_url": SecretStr(url.render_as_string(hide_password=False))}
    )


def kill_hard(process: subprocess.Popen[str]) -> str:
    """SIGKILL ``process`` (no handler runs, nothing is flushed or closed) and return what
    it printed. It must have been alive: a kill that came too late proves nothing."""
    assert process.poll() is None, f"already exited with {process.returncode}"
    os.kill(process.pid, signal.SIGKILL)
    output, _ = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == KILLED_BY_SIGKILL, output
    return output or ""


@pytest.fixture(autouse=True)
def kill_streamrec_children_left_behind() -> Iterator[None]:
    """After each test of a module that imports this fixture (autouse: importing is enough):
    SIGKILL every ``streamrec`` child process the test left running. A failing assertion
    skips the test's own clean-up, and a consumer started without an exit option would
    otherwise run on after the session."""
    yield
    for pid in streamrec_children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def streamrec_children() -> list[int]:
    """Process ids of this process's children that run ``streamrec.cli.main`` (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            parent = next(
                line.split()[1]
                for line in status.read_text().splitlines()
                if line.startswith("PPid:")
            )
            command = (status.parent / "cmdline").read_bytes()
            if int(parent) == os.getpid() and b"streamrec.cli.main" in command:
                found.append(int(status.parent.name))
    return found


def stored_records(engine: Engine, settings: Settings) -> int:
    """Interaction records the consumer group applied: the sum of its stored next offsets."""
    with UnitOfWork(engine) as uow:
        offsets = uow.offsets.get(settings.kafka.consumer_group, settings.topics.interactions)
    return sum(offsets.values())


def wait_for_stored_records(
    engine: Engine,
    settings: Settings,
    at_least: int,
    alive: Sequence[subprocess.Popen[str]] = (),
    timeout: float = WAIT_SECONDS,
) -> int:
    """Block until the group stored offsets covering ``at_least`` interaction records;
    fail at once if one of the ``alive`` processes exited meanwhile."""
    deadline = time.monotonic() + timeout
    while (stored := stored_records(engine, settings)) < at_least:
        _fail_if_exited(alive, f"{at_least} records were stored")
        if time.monotonic() > deadline:
            raise AssertionError(f"{stored} of {at_least} records stored after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)
    return stored


def active_sessions(engine: Engine, name: str) -> list[tuple[int, str]]:
    """(backend pid, state) of the sessions called ``name`` that are inside a statement or
    a transaction, i.e. in the middle of a batch rather than between batches."""
    statement = text(
        "SELECT pid, state FROM pg_stat_activity WHERE application_name = :name "
        "AND state IN ('active', 'idle in transaction') AND pid <> pg_backend_pid()"
    )
    with engine.connect() as connection:
        return [(row.pid, row.state) for row in connection.execute(statement, {"name": name})]


def terminate_backend(engine: Engine, pid: int) -> bool:
    """``pg_terminate_backend(pid)`` if that session is still inside a statement or a
    transaction: the server drops it as a crash or an administrator would. True if it did."""
    statement = text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE pid = :pid AND state IN ('active', 'idle in transaction')"
    )
    with engine.connect() as connection:
        return bool(connection.execute(statement, {"pid": pid}).scalar())


class OffsetGate:
    """Holds every transaction on the test's database that moves ``column`` of
    consumer_offsets (``next_offset``: a batch's transaction; ``acknowledged_offset``: the
    acknowledgement after a batch's publication) until ``release``: a trigger waits for a
    PostgreSQL advisory lock that the test holds. It holds them at the statement, or with
    ``at_commit`` in their COMMIT (a deferred constraint trigger), where the commit is
    decided by the server alone once released, whatever the client does meanwhile.

    Nothing in the process under test changes: it waits on a lock, as it would behind
    another session's transaction, so that the test can stop or kill it right there.
    ``with OffsetGate(...)`` installs the trigger and removes it again on the way out.
    """

    def __init__(
        self,
        engine: Engine,
        column: Literal["next_offset", "acknowledged_offset"],
        *,
        at_commit: bool = False,
    ) -> None:
        self._engine = engine
        self._column = column
        self._at_commit = at_commit
        # A key of its own, below 2**31 so that pg_locks shows it as objid alone.
        self._key = random.randrange(1, 2**31)
        self._name = f"streamrec_test_gate_{self._key}"
        self._holder: Connection | None = None

    def __enter__(self) -> OffsetGate:
        self._holder = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self._key})
        with self._engine.begin() as connection:
            # Fixed names and a number of ours: nothing from outside goes into the DDL.
            connection.execute(
                text(
                    f"CREATE FUNCTION {self._name}() RETURNS trigger LANGUAGE plpgsql AS "
                    f"$$ BEGIN PERFORM pg_advisory_xact_lock({self._key}); RETURN NEW; END $$"
                )
            )
            when = (
                "CONSTRAINT TRIGGER {name} AFTER UPDATE ON consumer_offsets "
                "DEFERRABLE INITIALLY DEFERRED"
                if self._at_commit
                else "TRIGGER {name} BEFORE UPDATE ON consumer_offsets"
            ).format(name=self._name)
            connection.execute(
                text(
                    f"CREATE {when} FOR EACH ROW WHEN (NEW.{self._column} IS DISTINCT FROM "
                    f"OLD.{self._column}) EXECUTE FUNCTION {self._name}()"
                )
            )
        return self

    def wait_for_a_held_transaction(
        self, alive: Sequence[subprocess.Popen[str]] = (), timeout: float = WAIT_SECONDS
    ) -> None:
        """Block until a transaction waits at the gate; fail if one of ``alive`` exited."""
        statement = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 "
            "AND objid = :key AND NOT granted"
        )
        deadline = time.monotonic() + timeout
        while True:
            with self._engine.connect() as connection:
                if connection.execute(statement, {"key": self._key}).scalar_one():
                    return
            _fail_if_exited(alive, "a transaction reached the gate")
            if time.monotonic() > deadline:
                raise AssertionError(f"no transaction reached the gate in {timeout:.0f} s")
            time.sleep(POLL_SECONDS)

    def release(self) -> None:
        """Let the held transactions (and every later one) through."""
        if self._holder is not None:
            self._holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._holder.close()
            self._holder = None

    def __exit__(self, *exception: object) -> None:
        # A transaction of a killed process waits at the gate until released; it then
        # finds its client gone and rolls back, and the trigger can be dropped.
        self.release()
        with self._engine.begin() as connection:
            connection.execute(text(f"DROP TRIGGER IF EXISTS {self._name} ON consumer_offsets"))
            connection.execute(text(f"DROP FUNCTION IF EXISTS {self._name}()"))


def offset_totals(engine: Engine, settings: Settings) -> tuple[int, int]:
    """(next, acknowledged) offsets of the consumer group, summed over every topic and
    partition: they move when a batch commits and when its outputs are acknowledged."""
    statement = text(
        "SELECT coalesce(sum(next_offset), 0), coalesce(sum(acknowledged_offset), 0) "
        "FROM consumer_offsets WHERE consumer_group = :group"
    )
    with engine.connect() as connection:
        stored, acknowledged = connection.execute(
            statement, {"group": settings.kafka.consumer_group}
        ).one()
    return int(stored), int(acknowledged)


def wait_for_offset_totals(
    engine: Engine,
    settings: Settings,
    *,
    stored_above: int = -1,
    acknowledged_above: int = -1,
    alive: Sequence[subprocess.Popen[str]] = (),
    timeout: float = WAIT_SECONDS,
) -> tuple[int, int]:
    """Block until the group's summed offsets pass the given totals."""
    deadline = time.monotonic() + timeout
    while True:
        stored, acknowledged = offset_totals(engine, settings)
        if stored > stored_above and acknowledged > acknowledged_above:
            return stored, acknowledged
        _fail_if_exited(alive, "the offsets moved")
        if time.monotonic() > deadline:
            raise AssertionError(f"offsets still at {stored}, {acknowledged} after {timeout} s")
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def stopped(process: subprocess.Popen[str]) -> Iterator[None]:
    """SIGSTOP ``process`` for the block (SIGCONT after, if it still lives): it runs no
    further instruction, while the kernel and its peers carry on."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)


def _fail_if_exited(processes: Sequence[subprocess.Popen[str]], waiting_for: str) -> None:
    for process in processes:
        if process.poll() is not None:
            output, _ = process.communicate()
            raise AssertionError(
                f"exited with {process.returncode} before {waiting_for}:\n{output}"
            )


def clean_run(settings: Settings, model: EfficientRec) -> Engine:
    """An in-memory database in the state one uninterrupted run over the input topics ends
    in: every input record applied in a single batch, under ``model``."""
    engine = create_memory_database()
    config, weights = model.to_version()
    with UnitOfWork(engine) as uow:
        uow.models.add(ModelVersion(None, ModelStatus.ACTIVE, config, weights))
        uow.commit()
    IngestService(settings, engine).apply(input_records(settings))
    return engine


def recommendation_lists(
    engine: Engine, settings: Settings, users: Iterable[str]
) -> dict[str, Ranking]:
    """What each user is recommended from the stored state under the active version, with
    every cluster's shortlist chosen afresh from the final statistics (``fresh_shortlists``).

    Two runs of one input cut into other batches hold statistics that differ in the last
    bits, and a shortlist breaks an exact tie of weights by item id, a near-exact one by
    that noise: their stored shortlists, and the votes over them, may legitimately differ
    where weights tie at the cut. Fresh shortlists with weights rounded first do not."""
    lists: dict[str, Ranking] = {}
    with UnitOfWork(engine) as uow:
        version = uow.models.active_version()
        assert version is not None, "no active model version"
        user_ids = sorted(set(users))
        states = uow.users.get_many(user_ids, version)
        seen = uow.interactions.for_users(user_ids)
        shortlists = fresh_shortlists(uow, version, settings.serving, round_to=SHORTLIST_DECIMALS)
        fallback = global_top_clusters(
            uow.clusters.masses(version), settings.serving.top_memberships
        )
        serving = ModelCache().serving(version, uow.models.get)
        for user_id in user_ids:
            state = states.get(user_id)
            profile = None if state is None else state.profile
            reranking = reranking_for(serving, [profile], settings.serving, uow.items.get_many)
            items = vote(
                fallback if state is None else state.top_clusters,
                shortlists,
                {row.item_id for row in seen.get(user_id, ())},
                settings.serving.recommendations,
                reranking,
            )
            lists[user_id] = [(item.item_id, item.score) for item in items]
    return lists


def fresh_shortlists(
    uow: UnitOfWork, version: int, settings: ServingSettings, round_to: int | None = None
) -> dict[int, Ranking]:
    """Each cluster's shortlist as the consumer's refresh chooses it, from every one of its
    statistics; with ``round_to``, weights are rounded to that many decimals before the
    cut, so that ties are broken by item id whatever the noise."""
    masses = uow.clusters.masses(version)
    shortlists = {}
    for cluster in uow.clusters.clusters(version):
        statistics = uow.clusters.top_items(version, cluster, ALL_ITEMS)
        everything = settings.model_copy(update={"shortlist_length": max(len(statistics), 1)})
        ranked = shortlist_from_statistics(statistics, masses.get(cluster, 0.0), everything)
        if round_to is not None:
            ranked = sorted(
                ((item_id, round(weight, round_to)) for item_id, weight in ranked),
                key=lambda pair: (-pair[1], pair[0]),
            )
        shortlists[cluster] = ranked[: settings.shortlist_length]
    return shortlists


def stale_shortlists(engine: Engine, settings: Settings) -> list[str]:
    """Clusters whose stored shortlist is not what the final statistics give (ties within
    float noise aside), one line each: a refresh that was lost or came too early."""
    with UnitOfWork(engine) as uow:
        version = uow.models.active_version()
        assert version is not None, "no active model version"
        fresh = fresh_shortlists(uow, version, settings.serving)
        stored = uow.clusters.shortlists(version, list(fresh))
    return ranking_differences(
        {str(cluster): shortlist for cluster, shortlist in fresh.items()},
        {str(cluster): list(stored.get(cluster, [])) for cluster in fresh},
    )


def ranking_differences(
    expected: dict[str, Ranking], actual: dict[str, Ranking], tolerance: float = SCORE_TOLERANCE
) -> list[str]:
    """Every user whose two lists differ, one line each (empty when they agree).

    Lists agree when their scores agree rank by rank within ``tolerance`` and they hold the
    same items, except that items whose scores are within ``tolerance`` of each other may
    swap places, and a group of such items at the end of the list may hold others of the
    same score.

    >>> ranking_differences({"u": [("a", 0.5), ("b", 0.5), ("c", 0.1)]},
    ...                     {"u": [("b", 0.5), ("a", 0.5), ("c", 0.1)]})
    []
    >>> ranking_differences({"u": [("a", 0.5), ("c", 0.1)]}, {"u": [("a", 0.5), ("d", 0.1)]})
    []
    >>> ranking_differences({"u": [("a", 0.5), ("c", 0.1)]}, {"u": [("c", 0.5), ("a", 0.1)]})
    ["user u: [('a', 0.5), ('c', 0.1)] != [('c', 0.5), ('a', 0.1)]"]
    """
    found = []
    for user_id in sorted(expected.keys() | actual.keys()):
        left, right = expected.get(user_id), actual.get(user_id)
        if left is None or right is None or not _rankings_agree(left, right, tolerance):
            found.append(f"user {user_id}: {left} != {right}")
    return found


def _rankings_agree(left: Ranking, right: Ranking, tolerance: float) -> bool:
    if len(left) != len(right):
        return False
    if not all(
        math.isclose(a, b, abs_tol=tolerance) for (_, a), (_, b) in zip(left, right, strict=True)
    ):
        return False
    for group in _tied_groups([score for _, score in left], tolerance):
        # A tie at the end of the list may be broken by items just outside it: there the
        # scores alone must agree.
        ends_the_list = group[-1] == len(left) - 1
        left_items = {left[rank][0] for rank in group}
        if not ends_the_list and left_items != {right[rank][0] for rank in group}:
            return False
    return True


def _tied_groups(scores: Sequence[float], tolerance: float) -> list[list[int]]:
    groups: list[list[int]] = []
    for rank, score in enumerate(scores):
        if groups and math.isclose(scores[groups[-1][-1]], score, abs_tol=tolerance):
            groups[-1].append(rank)
        else:
            groups.append([rank])
    return groups


def published_users(settings: Settings) -> set[str]:
    """Users with at least one message on the recommendations topic."""
    return {record.key.decode() for record in read_topic(settings, settings.topics.recommendations)}


def assert_same_as_clean_run(
    settings: Settings, model: EfficientRec, engine: Engine, *, records: int
) -> dict[str, Any]:
    """The database under ``engine`` holds what a clean run over the input topics gives:
    the same interactions and demographics, user states and cluster statistics within
    float tolerance, stored shortlists that follow those statistics, the same
    recommendations for every user; every user's list was published; and the offsets cover
    each of the ``records`` input records exactly once.
    Returns the stored dead letters by reason."""
    reference = clean_run(settings, model)
    try:
        with UnitOfWork(reference) as uow:
            expected = take_snapshot(uow)
        with UnitOfWork(engine) as uow:
            actual = take_snapshot(uow)
            dead_letters = uow.dead_letters.counts_by_reason()
        users = {user_id for user_id, _ in expected.interactions}
        # Plain asserts here are not rewritten by pytest: each says what differed.
        found = differences(expected, actual)
        assert not found, "state differs from a clean run's:\n" + "\n".join(found[:20])
        found = stale_shortlists(engine, settings)
        assert not found, "stored shortlists behind the statistics:\n" + "\n".join(found)
        expected_lists = recommendation_lists(reference, settings, users)
        found = ranking_differences(expected_lists, recommendation_lists(engine, settings, users))
        assert not found, "recommendations differ from a clean run's:\n" + "\n".join(found[:20])
        # Not a comparison of empty lists: most users have unseen items to be recommended.
        assert sum(map(bool, expected_lists.values())) > len(users) / 2, expected_lists
    finally:
        reference.dispose()
    unpublished = users - published_users(settings)
    assert not unpublished, f"never published: {sorted(unpublished)}"
    stored = stored_records(engine, settings)
    assert stored == records, f"offsets cover {stored} records, not {records}"
    return dead_letters
