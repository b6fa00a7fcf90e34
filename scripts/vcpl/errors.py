"""Errors the CLI reports as one clear message instead of a traceback."""
from __future__ import annotations


class VcplError(Exception):
    """A problem a user can fix; the message says what, where and what is expected."""


class RunbookError(VcplError):
    """One or more run-book violations, each naming file, field and expectation."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} run-book problem(s):\n{lines}")
