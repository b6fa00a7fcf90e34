"""The reconnect plan (failover.reconnect) as a list of attempts.

Both sides use it, each with its own source: the reference client with the rendered gateway.json,
the simulator with the run book, so a rendering that differs gives a different attempt list.

Reading of the schema (venues/runbook.schema.yaml, failover.reconnect):
- a step's attempts go to its `endpoint` (primary, backup, dr); a step without one (or `any`)
  sends each attempt to the next endpoint in failover order, starting again from the first one at
  every pass through the plan; a step whose endpoint the environment does not have is skipped;
- the first attempt after a connection is lost is immediate, every later one waits its step's
  intervalSeconds;
- after the last step: `repeat` starts again from the first step, `call-venue` stops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Attempt:
    index: int          # position in the endpoint list the plan was made from
    role: str
    wait: float         # seconds (unscaled) before this attempt


def attempts(reconnect: dict[str, Any], roles: list[str], limit: int = 200) -> tuple[list[Attempt], bool]:
    """The first `limit` attempts of the plan over endpoints with these roles (in failover order),
    and whether the plan ends (call-venue) after them."""
    steps = reconnect.get("steps") or []
    repeat = reconnect.get("then", "repeat") != "call-venue"
    out: list[Attempt] = []
    if not roles or not steps:
        return out, True
    while len(out) < limit:
        cursor = 0
        added = 0
        for step in steps:
            target = step.get("endpoint", "any")
            for _ in range(int(step.get("attempts", 1))):
                if target in ("any", None):
                    index = cursor % len(roles)
                    cursor += 1
                elif target in roles:
                    index = roles.index(target)
                else:
                    break
                out.append(Attempt(index, roles[index], 0.0 if not out else float(step.get("intervalSeconds", 1))))
                added += 1
                if len(out) >= limit:
                    return out, False
        if not repeat or added == 0:
            return out, True
    return out, False


def duration(plan: list[Attempt]) -> float:
    return sum(a.wait for a in plan)
