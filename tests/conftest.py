"""Shared fixtures live in tests/fixtures, one module per real part (databases, broker)."""

pytest_plugins = ["tests.fixtures.databases", "tests.fixtures.broker"]
