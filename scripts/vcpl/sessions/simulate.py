"""`vcpl simulate VENUE ENV`: the venue side alone, in real time, for a gateway to log on to.

Two ways to run it:

* on a workstation (default): in a session sandbox of its own (vcpl.sessions.sandbox), every
  rendered host on its sandbox address, exactly as `make rehearse-sessions` sees the venue; it
  prints what it serves and runs for --seconds or until interrupted;
* in a pod (--listen HOST, what platform/venue-simulators runs): the services with an endpoint on
  that rendered host, its endpoints on the pod's IP ($POD_IP) and the service's other hosts on loopback aliases
  (so equal ports never collide), until the pod is stopped. No namespace is created. Multicast
  feeds are not served this way: they need the feed networks attached to the simulator's pod.

The simulators are the ones the rehearsal uses, built from the run book, with their clocks
unscaled (factor 1).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from vcpl.errors import VcplError
from vcpl.sessions import families, sandbox
from vcpl.sessions import site as site_mod
from vcpl.sessions.site import Site

Stop = Any  # a callable that stops one started simulator


def _start_fix(site: Site, service: dict[str, Any], work: Path) -> Stop:
    from vcpl.sessions.fix_sim import Venue

    venue = Venue(site, service, work)
    venue.start()
    return venue.stop


def _start_binary(site: Site, service: dict[str, Any], work: Path) -> Stop:
    from vcpl.sessions.binary_codec import codec
    from vcpl.sessions.binary_venue import Venue

    venue = Venue(site, service, codec(str(service["protocol"]["sessionLayer"])), 1.0)
    venue.start()
    return venue.stop


def _start_feed(site: Site, service: dict[str, Any], work: Path) -> Stop:
    from vcpl.sessions.feeds import TICK, _heartbeat_seconds
    from vcpl.sessions.feeds_venue import Publisher, RecoveryServer

    spec = service["environments"][site.env]
    publishers = {int(c["id"]): Publisher(site, service, c, _heartbeat_seconds(service, site.env), TICK) for c in spec.get("channels", [])}
    servers = [RecoveryServer(site, service, i, e, publishers, 1.0) for i, e in enumerate(spec.get("recovery", []))]
    for s in servers:
        s.start()
    for p in publishers.values():
        p.start()

    def stop() -> None:
        for p in publishers.values():
            p.stop()
        for s in servers:
            s.stop()
    return stop


def _start_websocket(site: Site, service: dict[str, Any], work: Path) -> Stop:
    from vcpl.sessions.websocket_crypto import make_tls
    from vcpl.sessions.websocket_sim import Simulator

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name=f"ws-{service['name']}", daemon=True).start()
    sim = Simulator(site.venue, site.env, service, site.hosts, 1.0, make_tls(work / "websocket-tls", list(site.hosts)))
    asyncio.run_coroutine_threadsafe(sim.start(), loop).result(timeout=30)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
    return stop


_STARTERS = {"fix": _start_fix, "binary": _start_binary, "feed": _start_feed, "websocket": _start_websocket}


def _endpoint_hosts(site: Site, service: dict[str, Any]) -> set[str]:
    rendered: dict[str, Any] = next((s for s in site.gateway.get("services", []) if s["name"] == service["name"]), {})
    return {e["host"] for e in rendered.get("endpoints", [])}


def start_all(site: Site, work: Path, only_host: str | None = None) -> list[Stop]:
    """Start every service's simulator, or only those with an endpoint on `only_host` (a pod)."""
    stops: list[Stop] = []
    try:
        for service in site.runbook["services"]:
            if only_host and only_host not in _endpoint_hosts(site, service):
                continue
            stops.append(_STARTERS[families.family_of(service)](site, service, work))
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    return stops


def describe(site: Site, only_host: str | None = None) -> str:
    lines = [f"simulating {site.venue} {site.env} (run book venues/{site.venue}/runbook.yaml):"]
    for s in site.gateway.get("services", []):
        if only_host and only_host not in {e["host"] for e in s.get("endpoints", [])}:
            continue
        for e in s.get("endpoints", []):
            lines.append(f"  {s['name']:<14} {e['role']:<8} {e['host']}:{e['port']} -> {site.hosts.get(e['host'], '?')}:{e['port']}")
    for c in [] if only_host else (site.channels or {}).get("channels", []):
        for line in ("a", "b"):
            if line in c:
                lines.append(f"  {c['service']:<14} line {line}   {c[line]['group']}:{c[line]['port']} on {c[line]['interface']}")
    return "\n".join(lines)


def serve(site: Site, work: Path, seconds: float | None, only_host: str | None = None) -> None:
    try:
        stops = start_all(site, work, only_host)
    except OSError as exc:
        raise VcplError(f"simulator {site.venue} {site.env}: cannot listen: {exc}") from exc
    if not stops:
        raise VcplError(f"{site.venue} {site.env}: no service has an endpoint on {only_host}")
    print(describe(site, only_host), flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        done.wait(seconds)
    finally:
        for stop in reversed(stops):
            stop()
    print(f"simulator {site.venue} {site.env}: stopped", flush=True)


def pod_hosts(site: Site, listen: str, address: str) -> dict[str, str]:
    if listen not in site.hosts:
        raise VcplError(f"--listen {listen}: not a host the {site.venue} {site.env} overlay renders; expected one of {sorted(site.hosts)}")
    return {h: address if h == listen else f"127.0.{i // 250}.{i % 250 + 2}" for i, h in enumerate(sorted(site.hosts))}


def _cmd(args: argparse.Namespace) -> int:
    if args.listen:
        site = site_mod.load(args.venue, args.env)
        site.hosts = pod_hosts(site, args.listen, args.address)
        with tempfile.TemporaryDirectory(prefix="vcpl-simulator-") as work:
            serve(site, Path(work), args.seconds, args.listen)
        return 0
    reason = sandbox.unavailable()
    if reason:
        raise VcplError(reason)
    env = dict(os.environ, **{sandbox.INSIDE_ENV: "1"})
    cmd = sandbox.unshare_prefix() + [sys.executable, "-m", "vcpl.sessions.sandbox", args.venue, args.env, "--serve"]
    if args.seconds is not None:
        cmd += ["--seconds", str(args.seconds)]
    return subprocess.run(cmd, env=env).returncode


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("simulate", help="run a venue's simulator (from its run book) for an overlay's gateway to log on to")
    p.add_argument("venue")
    p.add_argument("env")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: until interrupted)")
    p.add_argument("--listen", metavar="HOST", help="in a pod: serve the services with an endpoint on this rendered host, no sandbox")
    p.add_argument("--address", default=os.environ.get("POD_IP", "127.0.0.1"),
                   help="with --listen: the address to serve HOST on (default $POD_IP, else 127.0.0.1)")
    p.set_defaults(func=_cmd)
