"""The running parts a demo or a benchmark needs: a broker, topics of its own, a database.

Each is a context manager that undoes exactly what it did, on success, error, Ctrl-C or
SIGTERM (``streamrec.cli.stopping`` turns it into the same way out): a local broker it
started is stopped (one that was already running is left alone), a scratch
PostgreSQL schema it created is dropped, a scratch SQLite file is deleted.

>>> from streamrec.config import Settings
>>> renamed = isolated_topics(Settings(), "run1")
>>> renamed.topics.interactions, renamed.kafka.consumer_group
('interactions-run1', 'streamrec-consumers-run1')
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url

from streamrec.broker import LocalBroker
from streamrec.config import Settings, TimeoutSettings
from streamrec.storage import create_database_engine
from streamrec.storage.migrations import upgrade

Announce = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BrokerUse:
    """Settings that point at a running broker, and whether we started it (and must stop it)."""

    settings: Settings
    started_here: bool


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


@contextlib.contextmanager
def running_broker(settings: Settings, announce: Announce = print) -> Iterator[BrokerUse]:
    """The configured Kafka, else the data directory's local broker: reused when it runs,
    otherwise started here and stopped on the way out (also on error and Ctrl-C)."""
    if settings.kafka.bootstrap_servers:
        yield BrokerUse(settings, started_here=False)
        return
    broker = LocalBroker(settings.data_dir)
    status = broker.status()
    if status.running and status.address is not None:
        announce(f"using the local broker already running at {status.address}")
        yield BrokerUse(_with_bootstrap(settings, status.address), started_here=False)
        return
    record = broker.start()
    announce(f"started a local broker at {record.address} (pid {record.pid})")
    try:
        yield BrokerUse(_with_bootstrap(settings, record.address), started_here=True)
    finally:
        _stop_to_the_end(broker)
        announce("stopped the local broker")


def _stop_to_the_end(broker: LocalBroker) -> None:
    """Stop the broker; a stop request (KeyboardInterrupt) that interrupts this waits until
    it is done (streamrec.cli.stopping ignores further signals), so the broker never
    outlives the command that started it."""
    try:
        broker.stop()
    except KeyboardInterrupt:
        broker.stop()
        raise


def isolated_topics(settings: Settings, run_id: str) -> Settings:
    """``settings`` with every topic and the consumer group suffixed by ``run_id``, so that a
    run never reads messages or offsets of an earlier one on a broker that keeps them."""
    renamed = {name: f"{topic}-{run_id}" for name, topic in settings.topics.model_dump().items()}
    return settings.model_copy(
        update={
            "topics": settings.topics.model_copy(update=renamed),
            "kafka": settings.kafka.model_copy(
                update={"consumer_group": f"{settings.kafka.consumer_group}-{run_id}"}
            ),
        }
    )


@contextlib.contextmanager
def scratch_database(settings: Settings, run_id: str, keep: bool = False) -> Iterator[Settings]:
    """``settings`` pointing at a new, migrated, empty database for one run: a schema of its
    own in the configured PostgreSQL, else a SQLite file in a temporary directory. It is
    removed on the way out unless ``keep``."""
    configured = settings.database_url
    if configured is not None and make_url(configured.get_secret_value()).get_backend_name() == (
        "postgresql"
    ):
        with _scratch_schema(
            configured.get_secret_value(), f"streamrec_bench_{run_id}", keep, settings.timeouts
        ) as url:
            yield _with_database(settings, url)
        return
    with tempfile.TemporaryDirectory(prefix="streamrec-bench-") as directory:
        url = f"sqlite:///{(Path(directory) / 'streamrec.db').as_posix()}"
        upgrade(url, timeouts=settings.timeouts)
        yield _with_database(settings, url)


@contextlib.contextmanager
def _scratch_schema(
    server_url: str, schema: str, keep: bool, timeouts: TimeoutSettings
) -> Iterator[str]:
    admin = create_database_engine(server_url, timeouts=timeouts)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = (
            make_url(server_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
        try:
            upgrade(url, timeouts=timeouts)
            yield url
        finally:
            if not keep:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def _with_bootstrap(settings: Settings, address: str) -> Settings:
    return settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": address})}
    )


def _with_database(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"database_url": SecretStr(url)})
