"""`vcpl rehearse-sessions`: every overlay's rendered settings against its venue simulator."""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import threading
import time
from pathlib import Path
from typing import Any

from vcpl import paths, render
from vcpl.errors import VcplError
from vcpl.sessions import families, promreplay, sandbox
from vcpl.sessions.site import Finding

LOG_TAIL = 150
DEFAULT_JOBS = 6   # sandboxes mostly wait on heartbeats and reconnect timers, not on the CPU


def selected(venue: str | None, env: str | None) -> list[tuple[str, str]]:
    combos = [(v, e) for e, v in render.overlays() if (not venue or v == venue) and (not env or e == env)]
    if not combos:
        raise VcplError(f"no overlay matches venue={venue or '*'} env={env or '*'} under {paths.relative(paths.OVERLAYS)}")
    return sorted(combos)


# pykwalify keeps one ruamel parser per process, which two threads loading a run book at once
# corrupt ("found another document"): the replays, which load run books, take turns.
_REPLAY = threading.Lock()


def rehearse_and_replay(venue: str, env: str, only: list[str] | None) -> sandbox.Result:
    """One overlay's sandbox, then its recorded series replayed into its own alert rules (promtool)."""
    result = sandbox.run(venue, env, only)
    with _REPLAY:
        result.findings.extend(promreplay.findings(result))
    return result


def rehearse_all(combos: list[tuple[str, str]], jobs: int, only: list[str] | None) -> tuple[list[sandbox.Result], list[str]]:
    results: list[sandbox.Result] = []
    errors: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = {pool.submit(rehearse_and_replay, v, e, only): (v, e) for v, e in combos}
        for future in concurrent.futures.as_completed(futures):
            try:
                results.append(future.result())
            except VcplError as exc:
                errors.append(str(exc))
            except Exception as exc:  # a harness fault in one overlay must not hide the others' results
                venue, env = futures[future]
                errors.append(f"{venue} {env}: {type(exc).__name__}: {exc}")
    results.sort(key=lambda r: (r.venue, r.env))
    return results, errors


def report(results: list[sandbox.Result], errors: list[str], verbose: bool) -> tuple[str, int]:
    findings: list[Finding] = [f for r in results for f in r.findings]
    failed = [f for f in findings if not f.ok]
    lines = [str(f) for f in (findings if verbose else failed)]
    lines += [f"ERROR {e}" for e in errors]
    silent = [f"{r.venue} {r.env}" for r in results if not r.findings]
    lines += [f"FAIL {s}: no check ran (no service of a rehearsed family?)" for s in silent]
    summary = (f"{len(findings)} checks on {len(results)} overlays: {len(findings) - len(failed)} ok, "
               f"{len(failed)} failed" + (f", {len(errors)} overlays could not be rehearsed" if errors else ""))
    return "\n".join(lines + [summary]), int(bool(failed or errors or silent))


def keep_logs(results: list[sandbox.Result], directory: Path) -> list[Path]:
    """The sandbox log (engine event logs included) of every overlay with a failed check: the
    sandbox's scratch is gone when it ends, and a rare failure is only explained by its log."""
    kept = []
    for stale in directory.glob("*.log"):   # from an earlier run
        stale.unlink()
    for result in results:
        if all(f.ok for f in result.findings):
            continue
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{result.venue}-{result.env}.log"
        path.write_text(result.log, encoding="utf-8")
        kept.append(path)
    return kept


def _cmd(args: argparse.Namespace) -> int:
    reason = sandbox.unavailable()
    if reason:
        raise VcplError(reason)
    only = args.families.split(",") if args.families else None
    if only and set(only) - set(families.FAMILIES):
        raise VcplError(f"--families: unknown {sorted(set(only) - set(families.FAMILIES))}; expected some of {sorted(families.FAMILIES)}")
    start = time.monotonic()
    results, errors = rehearse_all(selected(args.venue, args.env), args.jobs, only)
    text, code = report(results, errors, args.verbose)
    print(text)
    print(f"session rehearsal: {time.monotonic() - start:.0f} s with {args.jobs} sandboxes at a time")
    if args.logs:
        for path in keep_logs(results, Path(args.logs)):
            # Printed too: CI keeps the output, not the build directory.
            tail = path.read_text(encoding="utf-8").splitlines()[-LOG_TAIL:]
            print(f"--- log of a failed overlay: {path} (last {len(tail)} lines)", *(f"  | {line}" for line in tail), sep="\n")
    if args.json:
        out: dict[str, Any] = {"findings": [f.as_dict() for r in results for f in r.findings], "errors": errors,
                               "samples": {f"{r.venue}/{r.env}": r.samples for r in results}}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return code


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("rehearse-sessions", help="log on with every overlay's rendered settings to its venue simulator, fail over, recover")
    p.add_argument("--venue", help="only this venue")
    p.add_argument("--env", help="only this environment")
    p.add_argument("--families", help=f"only these families, comma-separated ({', '.join(families.FAMILIES)})")
    p.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help=f"sandboxes at a time (default {DEFAULT_JOBS})")
    p.add_argument("--verbose", "-v", action="store_true", help="print every check, not only the failed ones")
    p.add_argument("--json", metavar="FILE", help="also write every finding and the recorded metric series as JSON")
    p.add_argument("--logs", metavar="DIR", help="keep the sandbox log of every overlay with a failed check in DIR")
    p.set_defaults(func=_cmd)

