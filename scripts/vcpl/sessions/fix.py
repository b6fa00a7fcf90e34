"""FIX family (session layer engine quickfix): a QuickFIX acceptor derived from the run book
(vcpl.sessions.fix_sim) and the real QuickFIX engine as the gateway (vcpl.sessions.fix_client),
driven by vcpl.sessions.fix_worker in a child process that shares one libfaketime clock with both,
so the session window and the reset at the next open can be rehearsed in seconds. See
README-fix.md for what is and is not simulated.
"""
from __future__ import annotations


import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcpl.errors import VcplError
from vcpl.sessions.site import Finding

if TYPE_CHECKING:
    from vcpl.sessions.sandbox import Context

FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/faketime/libfaketimeMT.so.1")
WORKER_TIMEOUT = 150


def unavailable() -> str | None:
    """Why the FIX rehearsal cannot run here, or None."""
    try:
        import quickfix  # type: ignore[import-untyped]  # noqa: F401
    except ImportError as exc:
        return f"the QuickFIX engine is not importable ({exc}): run `make setup-sessions`"
    if faketime_lib() is None and os.environ.get("VCPL_FIX_FAKETIME") != "0":
        return f"libfaketime is not installed (none of {', '.join(FAKETIME_LIBS)}): run `make setup-sessions`"
    return None


def faketime_lib() -> str | None:
    if os.environ.get("VCPL_FIX_FAKETIME") == "0":   # debugging: run on the real clock
        return None
    return next((p for p in FAKETIME_LIBS if Path(p).exists()), None)


def rehearse(ctx: Context, services: list[dict[str, Any]]) -> list[Finding]:
    reason = unavailable()
    if reason:
        raise VcplError(f"{ctx.site.venue} {ctx.site.env}: {reason}")
    work = ctx.work / "fix"
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "worker.pickle"
    spec.write_bytes(pickle.dumps((ctx.site, services, str(work))))
    # The engine runs with the gateway container's environment, as in the pod (TZ: the zone
    # QuickFIX C++ reads StartTime/EndTime in, with UseLocalTime=Y).
    env = {**os.environ, **ctx.site.container_env}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")] if p)
    schedule = ctx.site.runbook["schedule"]
    lib = faketime_lib()
    if lib and not schedule.get("continuous"):
        # The venue's session window may be closed right now: start the shared clock an hour into
        # next week's first session (the worker moves it to the close and the next open later).
        from vcpl.sessions.fix_worker import open_instant

        offset = round(open_instant(schedule, time.time()) - time.time())
        stamp = work / "faketime"
        stamp.write_text(f"{offset:+d}\n", encoding="utf-8")
        env.update({"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": str(stamp), "FAKETIME_CACHE_DURATION": "1",
                    "VCPL_FAKETIME_OFFSET": str(offset)})
    env["PYTHONFAULTHANDLER"] = "1"   # a crash in the engine prints the Python stacks
    log_path = work / "worker.log"
    log = open(log_path, "w", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "vcpl.sessions.fix_worker", str(spec)], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    timer = threading.Timer(WORKER_TIMEOUT, proc.kill)
    timer.start()
    findings: list[dict[str, Any]] | None = None
    try:
        assert proc.stdout and proc.stdin
        for line in proc.stdout:
            kind, _, payload = line.partition(" ")
            if kind == "FIXEVT":
                event = json.loads(payload)
                if event.get("restart"):
                    ctx.restart_gateway()
                    proc.stdin.write("ok\n")
                    proc.stdin.flush()
                elif event.get("metric") == "set":
                    ctx.metrics.set(event["name"], event["value"], service=event["service"])
                elif event.get("metric") == "inc":
                    ctx.metrics.inc(event["name"], event["value"], service=event["service"])
            elif kind == "FIXRESULT":
                findings = json.loads(payload)
        proc.wait()
    finally:
        timer.cancel()
        log.close()
    text = log_path.read_text(encoding="utf-8", errors="replace")
    sys.stderr.write(text)   # into the sandbox's log
    if findings is None:
        tail = "\n".join(text.strip().splitlines()[-25:])
        raise VcplError(f"{ctx.site.venue} {ctx.site.env}: the FIX rehearsal ended without a result (exit {proc.returncode}):\n{tail}")
    return [Finding(**f) for f in findings]



