"""The session rehearsal's tests need the sandbox (unshare + ip) and, for the FIX family, quickfix
and libfaketime (`make setup-sessions`). Without them a test is skipped with the reason, or fails
under VCPL_REHEARSAL_REQUIRED=1 (as CI runs): a missing toolchain is never a pass."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from vcpl.sessions import sandbox

REQUIRED_ENV = "VCPL_REHEARSAL_REQUIRED"


def gate(reason: str | None) -> None:
    if not reason:
        return
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRED_ENV}=1: a missing toolchain is a failure)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(name="gate")
def gate_fixture() -> object:
    """`gate(reason)` for a module's own requirement (test_fix: quickfix and libfaketime)."""
    return gate


@pytest.fixture(autouse=True)
def _sandbox_available(request: pytest.FixtureRequest) -> Iterator[None]:
    # Tests that only read generated files (test_simulators' sync checks) need no sandbox.
    if request.node.get_closest_marker("no_sandbox") is None:
        gate(sandbox.unavailable())
    yield
