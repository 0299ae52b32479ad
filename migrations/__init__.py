"""Alembic migrations of the streamrec schema; run them with ``streamrec db upgrade``."""
