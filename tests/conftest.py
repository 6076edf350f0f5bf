"""Test configuration: fixtures live in tests/fixtures/ and are loaded as plugins."""

pytest_plugins = [
    "tests.fixtures.db",
    "tests.fixtures.server",
    "tests.fixtures.emulator",
    "tests.fixtures.protected",
]
