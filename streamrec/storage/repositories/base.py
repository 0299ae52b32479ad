"""What every repository holds: the unit of work's connection and its clock."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

Clock = Callable[[], float]


class Repository:
    """Repositories share the unit of work's connection, so they share its transaction."""

    def __init__(self, connection: Connection, clock: Clock) -> None:
        self._connection = connection
        self._clock = clock
