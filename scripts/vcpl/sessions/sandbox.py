"""One venue and environment in a network and mount namespace of their own.

Inside, the pod's view is real: the rendered ConfigMaps and credential files sit at their mount
paths (overlay mounts on /etc, /var/lib, /run: nothing on the host changes), each rendered host
name resolves through /etc/hosts to an address on the sandbox's loopback, and each feed NIC named
in channels.json (feeda, feedb...) exists as an interface. So the reference client opens exactly
what the overlay rendered, unmodified, and the simulator listens where the overlay points.

The namespaces need root, or user namespaces (unshare --map-root-user). They vanish with the
process: nothing is left to stop.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vcpl.errors import VcplError
from vcpl.sessions import site as site_mod
from vcpl.sessions.metrics import Recorder
from vcpl.sessions.site import Finding, Site

RESULT_MARK = "VCPL-SESSIONS-RESULT "
INSIDE_ENV = "VCPL_SESSIONS_SANDBOX"
# The sandbox's scratch lives outside /tmp, which the gateway mounts an emptyDir on.
WORK_BASE_ENV = "VCPL_SESSIONS_WORK"
DEFAULT_WORK_BASE = "/var/tmp"
# Directories that receive mounts get a private overlay; /tmp stays shared with the harness.
_OVERLAID_ROOTS = ("/etc", "/var/lib", "/run")


@dataclass
class Context:
    """What a protocol family's rehearsal gets besides the Site."""

    site: Site
    root: Path             # where the pod's files are (/ inside the sandbox)
    work: Path             # scratch for the simulator (its own stores, logs)
    metrics: Recorder
    scratch: Path          # the sandbox's own scratch (overlay layers, claims)

    def restart_gateway(self) -> None:
        """Volumes after a pod restart: each emptyDir is empty again, a claim is kept."""
        if os.environ.get(INSIDE_ENV) != "1":
            raise VcplError("restart_gateway() outside the session sandbox: it would touch the host's directories")
        for mount in self.site.mounts:
            if mount.writable and not mount.persistent:
                # Lazy: a process may still hold a file there (the venv's python, under /tmp in a CI clone).
                subprocess.run(["umount", "--lazy", mount.path], check=True, capture_output=True)
                _empty_dir(mount.path, self.scratch)


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "the session sandbox needs `unshare` (util-linux) and `ip` (iproute2)"
    probe = subprocess.run(unshare_prefix() + ["true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`unshare --net --mount` is not permitted here: {probe.stderr.strip() or probe.returncode}"
    return None


def unshare_prefix() -> list[str]:
    prefix = ["unshare", "--net", "--mount"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    return prefix


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise VcplError(f"sandbox: `ip {' '.join(args)}` failed: {proc.stderr.strip()}")


def _overlay(directory: str, scratch: Path) -> None:
    """Writes under `directory` go to a fresh layer in the scratch; the host's files stay visible."""
    layer = Path(tempfile.mkdtemp(prefix=directory.strip("/").replace("/", "_") + "-", dir=scratch))
    (layer / "upper").mkdir()
    (layer / "work").mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={directory},upperdir={layer / 'upper'},workdir={layer / 'work'}",
                    directory], check=True, capture_output=True)


def _empty_dir(path: str, scratch: Path) -> None:
    """An emptyDir: a tmpfs (what the kubelet makes for medium Memory); where the path already
    exists on the host (/tmp), an overlay instead, since the repository or the venv may live there
    (a CI clone in /tmp): what the gateway writes is still discarded at each restart."""
    if Path(path).is_dir() and any(Path(path).iterdir()):
        _overlay(path, scratch)
        return
    Path(path).mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=1777", "tmpfs", path], check=True, capture_output=True)


def enter(site: Site, scratch: Path) -> None:
    """Build the pod's view inside fresh namespaces (call only in the unshared process):
    private overlays where files are written, an empty directory per emptyDir (`_empty_dir`), a
    directory of the scratch bind-mounted per claim (it survives a restart)."""
    if os.environ.get(INSIDE_ENV) != "1":
        raise VcplError("sandbox.enter() outside the unshared sandbox process")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True, capture_output=True)
    for directory in _OVERLAID_ROOTS:
        _overlay(directory, scratch)
    for index, mount in enumerate(site.mounts):
        if mount.persistent:
            claim = scratch / "claims" / str(index)
            claim.mkdir(parents=True)
            Path(mount.path).mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", str(claim), mount.path], check=True, capture_output=True)
        elif mount.writable:
            _empty_dir(mount.path, scratch)
    _ip("link", "set", "lo", "up")
    for address in sorted(set(site.hosts.values())):
        if not address.startswith("127."):
            _ip("addr", "add", f"{address}/32", "dev", "lo")
    for index, (nic, address) in enumerate(sorted(site.interfaces.items())):
        # A veth pair gives the NIC a multicast-capable link; its peer only keeps it up.
        peer = f"vp{index}"
        _ip("link", "add", nic, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "up")
        _ip("link", "set", nic, "multicast", "on", "up")
        _ip("addr", "add", f"{address}/24", "dev", nic)
    with open("/etc/hosts", "a", encoding="utf-8") as hosts:
        for host, address in sorted(site.hosts.items()):
            if host != address:
                hosts.write(f"{address} {host}\n")
    site.write_mounts(Path("/"))


def _inside(venue: str, env: str, families: list[str] | None, overlay: Path | None) -> int:
    from vcpl.sessions import families as families_mod

    site = site_mod.load(venue, env, overlay)
    with tempfile.TemporaryDirectory(prefix=f"vcpl-sandbox-{venue}-{env}-", dir=os.environ.get(WORK_BASE_ENV, DEFAULT_WORK_BASE)) as tmp:
        scratch = Path(tmp)
        # Anything a tool writes by a relative path (the FIX engine has been seen writing store
        # files through a dangling path) lands here and goes with the sandbox.
        os.chdir(scratch)
        enter(site, scratch)
        ctx = Context(site, Path("/"), scratch / "venue", Recorder(venue, env), scratch)
        ctx.work.mkdir()
        findings = families_mod.rehearse(ctx, families)
        print(RESULT_MARK + json.dumps({"findings": [f.as_dict() for f in findings],
                                        "samples": ctx.metrics.samples}), flush=True)
    return 0


def _serve(venue: str, env: str, seconds: float | None) -> int:
    from vcpl.sessions import simulate

    site = site_mod.load(venue, env)
    with tempfile.TemporaryDirectory(prefix=f"vcpl-simulator-{venue}-{env}-", dir=os.environ.get(WORK_BASE_ENV, DEFAULT_WORK_BASE)) as tmp:
        enter(site, Path(tmp))
        work = Path(tmp) / "venue"
        work.mkdir()
        simulate.serve(site, work, seconds)
    return 0


@dataclass
class Result:
    venue: str
    env: str
    findings: list[Finding]
    samples: list[tuple[float, str, tuple[tuple[str, str], ...], float]]
    log: str


def run(venue: str, env: str, families: list[str] | None = None, timeout: float = 240, overlay: Path | None = None) -> Result:
    """Rehearse one overlay in its own sandbox process; the process (and the namespaces) end with it."""
    reason = unavailable()
    if reason:
        raise VcplError(reason)
    child_env = dict(os.environ, **{INSIDE_ENV: "1"})
    cmd = unshare_prefix() + [sys.executable, "-m", "vcpl.sessions.sandbox", venue, env] + (["--families", ",".join(families)] if families else []) + (["--overlay", str(overlay)] if overlay else [])
    try:
        # Not run from the repository: nothing written by a relative path may land in it.
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env,
                              cwd=os.environ.get(WORK_BASE_ENV, DEFAULT_WORK_BASE))
    except subprocess.TimeoutExpired as exc:
        raise VcplError(f"{venue} {env}: the session rehearsal did not finish within {timeout:.0f}s") from exc
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            data = json.loads(line[len(RESULT_MARK):])
            findings = [Finding(**f) for f in data["findings"]]
            samples = [(t, n, tuple(tuple(kv) for kv in labels), v) for t, n, labels, v in data["samples"]]
            return Result(venue, env, findings, samples, proc.stderr)
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    raise VcplError(f"{venue} {env}: the session sandbox ended without a result (exit {proc.returncode}): {tail}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vcpl.sessions.sandbox", description="(internal) rehearse one overlay inside its namespaces")
    parser.add_argument("venue")
    parser.add_argument("env")
    parser.add_argument("--families")
    parser.add_argument("--overlay", type=Path)
    parser.add_argument("--serve", action="store_true", help="only the venue side, in real time (vcpl simulate)")
    parser.add_argument("--seconds", type=float)
    args = parser.parse_args(argv)
    try:
        if args.serve:
            return _serve(args.venue, args.env, args.seconds)
        return _inside(args.venue, args.env, args.families.split(",") if args.families else None, args.overlay)
    except VcplError as exc:
        print(f"vcpl sessions: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
