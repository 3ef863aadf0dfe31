"""Scenario tests drive the HTTP API: the API fixtures (tenants with keys, a manual clock)."""

from tests.api.conftest import alice, bob, caller_for, client  # noqa: F401
from tests.scenarios.flow import club, dispatcher  # noqa: F401
