"""What can go wrong at the storage edge, each with a message that says exactly what."""

from __future__ import annotations

from streamrec.errors import UserFacingError


class StorageError(Exception):
    """Base of storage errors that callers may want to catch as one."""


class DatabaseUnavailableError(StorageError, UserFacingError):
    """The database cannot be reached or opened; the message names the masked URL."""


class DatabaseMissingError(StorageError, UserFacingError):
    """The SQLite file a command would read does not exist (and the command creates none)."""


class DatabaseNotMigratedError(StorageError, UserFacingError):
    """The schema is older than this code's (or absent): ``streamrec db upgrade`` first."""


class UnsupportedDatabaseError(StorageError, UserFacingError):
    """The URL names a database other than PostgreSQL or SQLite."""


class UnknownModelVersionError(StorageError, LookupError):
    """A model version that is not registered."""


class CorruptRecordError(StorageError, ValueError):
    """A stored value cannot be decoded (e.g. a vector whose byte length is not 4 * n)."""


class InvalidRecordError(StorageError, ValueError):
    """A value the caller asked to store is unfit (wrong shape, not finite, unknown code)."""


class ConcurrentActivationError(StorageError):
    """Another transaction activated a model version at the same time; roll back and retry."""
