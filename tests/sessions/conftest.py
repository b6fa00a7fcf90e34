"""The session rehearsal's tests need the sandbox (unshare + ip) and, for the FIX family, quickfix
and libfaketime (`make setup-sessions`). Without them a test is skipped with the reason, or fails
under VCPL_REHEARSAL_REQUIRED=1 (as CI runs): a missing toolchain is never a pass."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from vcpl.sessions import sandbox

from .gate import gate


@pytest.fixture(autouse=True)
def _sandbox_available(request: pytest.FixtureRequest) -> Iterator[None]:
    # Tests that only read generated files (test_simulators' sync checks) need no sandbox.
    if request.node.get_closest_marker("no_sandbox") is None:
        gate(sandbox.unavailable())
    yield
