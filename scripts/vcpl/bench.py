"""`vcpl bench`: how the gate's cost grows with the catalogue.

For each size N it synthesizes N overlays from the shipped venues (renamed copies with their own
venue id, namespace and CompIDs, regenerated from their run books so they pass the gate), then
times, in the same run, rendering alone, the full gate from a cold start (empty cache), and the gate
again after one venue's overlays change (cache warm)."""
from __future__ import annotations

import argparse
import copy
import math
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcpl import gate, generate, paths, render, runbook, yamlio
from vcpl.errors import VcplError

COPIED = ("base", "components", "platform")


@dataclass
class Measure:
    overlays: int
    render: float        # kustomize build of every overlay, as the gate runs it (2 workers, tuned Go GC)
    render_plain: float  # the same with kustomize's default runtime settings, as a GitOps engine runs it
    gate: float
    seconds: dict[str, float]
    findings: int
    one_venue: float      # the gate again after changing one venue's three overlays, cache warm
    rejudged: int         # overlays the cache let through to the engines on that run

    @property
    def ratio(self) -> float:
        return self.gate / self.render if self.render else 0.0


def _renamed_runbook(rb: runbook.Runbook, copy_no: int) -> runbook.Runbook:
    venue = rb["venue"]["id"]
    clone = copy.deepcopy(rb)
    clone["venue"]["id"] = f"{venue}-s{copy_no}"
    for service in clone["services"]:
        for spec in service["environments"].values():
            session = spec.get("session") or {}
            if "senderCompID" in session:
                session["senderCompID"] = f"{session['senderCompID']}S{copy_no}"
    return clone


def synthesize(out: Path, size: int) -> list[tuple[str, str]]:
    """A catalogue of `size` overlays under `out`: the shipped ones first, then renamed copies."""
    for name in COPIED:
        shutil.copytree(paths.ROOT / name, out / name)
    shutil.copytree(paths.VENUES, out / "venues", ignore=shutil.ignore_patterns("*.md"))
    shipped = render.overlays()
    platform = generate.load_platform()
    made: list[tuple[str, str]] = []
    for copy_no in range(math.ceil(size / len(shipped))):
        books: dict[str, runbook.Runbook] = {}
        for env, venue in shipped:
            if len(made) == size:
                return made
            rb = runbook.load_venue(venue)
            new = venue if copy_no == 0 else f"{venue}-s{copy_no}"
            if copy_no and new not in books:
                books[new] = _renamed_runbook(rb, copy_no)
                folder = out / "venues" / new
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "runbook.yaml").write_text(yamlio.dump(books[new]), encoding="utf-8")
                shutil.copy(paths.VENUES / venue / "kustomization.yaml", folder / "kustomization.yaml")
                generate.write_atomically(generate.outputs_for(books[new], platform, folder / "generated", f"venues/{new}/runbook.yaml"))
            text = (paths.overlay_dir(env, venue) / "kustomization.yaml").read_text(encoding="utf-8")
            text = text.replace(f"venues/{venue}/", f"venues/{new}/").replace(f"venues/{venue}\n", f"venues/{new}\n")
            text = text.replace(f"venue-{venue}-{env}", f"venue-{new}-{env}")
            target = out / "overlays" / env / new / "kustomization.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            made.append((env, new))
    return made


def measure(size: int) -> Measure:
    with tempfile.TemporaryDirectory(prefix="vcpl-bench-") as tmp:
        root = Path(tmp)
        overlays = synthesize(root, size)
        render_seconds = _render_all(root, overlays, tuned=True)
        plain_seconds = _render_all(root, overlays, tuned=False)
        # Cold: the cache directory is empty, so this run judges everything (and fills it).
        result = gate.check(root, use_cache=True)
        venue = overlays[-1][1]
        for env in paths.ENVIRONMENTS:
            target = root / "overlays" / env / venue / "kustomization.yaml"
            if target.exists():
                target.write_text(target.read_text(encoding="utf-8").replace("newTag:", "newTag: 0.0.1-bench\n    # was:", 1), encoding="utf-8")
        again = gate.check(root, use_cache=True)
        return Measure(len(overlays), render_seconds, plain_seconds, result.seconds["total"], result.seconds,
                       len(result.findings) + len(again.findings), again.seconds["total"], again.counts.get("rego", 0))


def _render_all(root: Path, overlays: list[tuple[str, str]], tuned: bool) -> float:
    kustomize = render.tool("kustomize")
    env = render.tool_env("kustomize") if tuned else dict(os.environ)

    def build(ev: tuple[str, str]) -> None:
        done = subprocess.run([kustomize, "build", str(root / "overlays" / ev[0] / ev[1])], capture_output=True, env=env)
        if done.returncode:
            raise VcplError(f"kustomize build overlays/{ev[0]}/{ev[1]} failed in the synthesized catalogue:\n{done.stderr.decode()[-2000:]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(gate.WORKERS) as pool:
        list(pool.map(build, overlays))
    return time.perf_counter() - started


def table(measures: list[Measure]) -> str:
    lines = [
        "| overlays | render only | render only, default Go GC | gate, cold (render included) | gate / render | gate / default render "
        "| gate: render | gate: models and engines | model | kyverno | conftest | one venue changed, cache warm | findings |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measures:
        s = m.seconds
        lines.append(f"| {m.overlays} | {m.render:.1f} s | {m.render_plain:.1f} s | {m.gate:.1f} s | {m.ratio:.2f}x | "
                     f"{m.gate / m.render_plain:.2f}x | {s.get('render', 0):.1f} s | {s.get('engines', 0):.1f} s | {s.get('model', 0):.1f} s | "
                     f"{s.get('kyverno', 0):.1f} s | {s.get('conftest', 0):.1f} s | {m.one_venue:.1f} s ({m.rejudged} judged) | {m.findings} |")
    by_size = {m.overlays: m for m in measures}
    for small in sorted(by_size):
        big = by_size.get(small * 4)
        if big:
            lines.append(f"\n{small} -> {big.overlays} overlays: gate time x{big.gate / by_size[small].gate:.2f} "
                         f"(render x{big.render / by_size[small].render:.2f})")
    return "\n".join(lines)


def _cmd(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or any(s < 1 for s in sizes):
        raise VcplError(f"--sizes {args.sizes!r}: expected a comma-separated list of positive overlay counts, e.g. 24,96,384")
    measures = []
    for size in sizes:
        measures.append(measure(size))
        m = measures[-1]
        print(f"{m.overlays} overlays: render {m.render:.1f} s, gate {m.gate:.1f} s ({m.ratio:.2f}x), findings {m.findings}", flush=True)
    print()
    print(table(measures))
    return 1 if any(m.findings for m in measures) else 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("bench", help="time render-only against the full gate on synthesized catalogues")
    p.add_argument("--sizes", default="24,96,384", help="overlay counts to synthesize (default 24,96,384)")
    p.set_defaults(func=_cmd)
