"""Skip, or fail when required: a session-rehearsal test whose toolchain is missing never passes."""
from __future__ import annotations

import os

import pytest

REQUIRED_ENV = "VCPL_REHEARSAL_REQUIRED"


def gate(reason: str | None) -> None:
    """Nothing when `reason` is None; else skip with it, or fail under VCPL_REHEARSAL_REQUIRED=1 (CI)."""
    if not reason:
        return
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRED_ENV}=1: a missing toolchain is a failure)", pytrace=False)
    pytest.skip(reason)
