"""The API fixtures (tenants with keys, a client on a manual clock) for the console pages."""

from tests.api.conftest import alice, bob, caller_for, client  # noqa: F401
