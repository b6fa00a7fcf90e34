"""Errors the CLI reports as one clear message instead of a traceback."""
from __future__ import annotations


class VcplError(Exception):
    """A problem a user can fix; the message says what, where and what is expected."""


def _one_line(text: str) -> str:
    # A value quoted into a message may carry a newline (a YAML block scalar); keep it visible
    # but on the same line, so every problem is exactly one line of output.
    return text.replace("\r", "\\r").replace("\n", "\\n")


class InputError(VcplError):
    """A file refused before it is interpreted: size, encoding, YAML syntax, duplicate keys,
    aliases, nesting. Each problem names a field path or a line and column."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = [_one_line(p) for p in problems]
        super().__init__("\n".join(self.problems))


class RunbookError(VcplError):
    """One or more run-book violations, one line each: `<file>: <field>: <problem>; expected <...>`."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = [_one_line(p) for p in problems]
        super().__init__("\n".join(f"{path}: {p}" for p in self.problems))
