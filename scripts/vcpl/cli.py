"""`vcpl`: the single entry point of the library's tooling."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vcpl import archetypes, bench, catalog, dashboards, drift, gate, generate, gitops, matrix, orchestra, paths, promote, reference, render, runbook, runbook_docs, scaffold, stats, tools
from vcpl.errors import VcplError
from vcpl.sessions import cli as sessions_cli
from vcpl.sessions import manifests as sim_manifests
from vcpl.sessions import simulate


def _cmd_validate(args: argparse.Namespace) -> int:
    """Any file, in venues/ or a draft elsewhere; stderr gets one `<file>: <field>: ...` line per problem."""
    targets = [Path(p) for p in args.files] or [paths.runbook_path(v) for v in paths.venue_ids()]
    failures = []
    for path in targets:
        try:
            runbook.load(path)
            print(f"ok   {paths.relative(path)}")
        except VcplError as exc:
            print(f"FAIL {paths.relative(path)}")
            failures.append(str(exc))
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


def _cmd_generate(args: argparse.Namespace) -> int:
    venues = [args.venue] if args.venue else None
    files = generate.planned(venues)
    return generate.check_or_write(files, args.check, "generated files", "make generate", generate.generated_on_disk(venues), "any run book")


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _cmd_build(args: argparse.Namespace) -> int:
    _write(render.build(args.env, args.venue), args.output)
    return 0


def _cmd_build_all(args: argparse.Namespace) -> int:
    rendered = {(env, venue): render.build(env, venue) for env, venue in render.overlays()}
    out = Path(args.output)
    for (env, venue), text in rendered.items():
        _write(text, str(out / env / f"{venue}.yaml"))
    print(f"rendered {len(rendered)} overlays into {out}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    if args.shard:
        index, total = gate.parse_shard(args.shard)
        shard = gate.check_shard(paths.ROOT, index, total, use_cache=not args.no_cache)
        target = Path(args.shard_output or f"build/gate/shard-{index}-of-{total}.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(shard), encoding="utf-8")
        print(f"shard {index}/{total}: {len(shard['overlays'])} overlays, {len(shard['findings'])} finding(s) -> {target}")
        return 0
    if args.merge:
        shards = []
        for name in args.merge:
            try:
                shards.append(json.loads(Path(name).read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError) as exc:
                raise VcplError(f"{name}: not a shard result: {exc}") from None
        result = gate.merge_shards(shards)
        print(gate.report(result))
        return 0 if result.ok else 1
    scope = None
    if args.venue or args.env:
        scope = {(e, v) for e, v in gate.overlays_under(paths.ROOT)
                 if (not args.venue or v == args.venue) and (not args.env or e == args.env)}
        if not scope:
            raise VcplError(f"no overlay for venue {args.venue or '*'} in environment {args.env or '*'}")
    result = gate.check(scope=scope, use_cache=not args.no_cache)
    print(gate.report(result))
    timing = ", ".join(f"{step} {secs:.1f}s" for step, secs in result.seconds.items())
    print(f"timing: {timing}")
    c = result.counts
    print(f"judged afresh: {c.get('rego', 0)} of {c.get('overlays', 0)} overlays by conftest, {c.get('kyverno', 0)} by kyverno (the rest from .cache/gate)")
    return 0 if result.ok else 1


def _cmd_promote(args: argparse.Namespace) -> int:
    passed, text = promote.promote(args.venue, args.source, args.target, dry_run=args.dry_run)
    print(text)
    return 0 if passed else 1


def _cmd_policy_matrix(args: argparse.Namespace) -> int:
    text = matrix.render_matrix()
    if args.check:
        if not matrix.MATRIX.exists() or matrix.MATRIX.read_text(encoding="utf-8") != text:
            print(f"{paths.relative(matrix.MATRIX)} is out of date: run `make policy-matrix`", file=sys.stderr)
            return 1
        return 0
    generate.write_atomically({matrix.MATRIX: text})
    print(f"wrote {paths.relative(matrix.MATRIX)}")
    return 0


def _cmd_tools(args: argparse.Namespace) -> int:
    tools.install_all()
    # The official FIX Orchestra XSD comes from its Maven Central artifact, never from git.
    print(f"FIX Orchestra schema: {paths.relative(orchestra.fetch_schema())}")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    print(stats.report())
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="vcpl", description="Venue Connectivity Pattern Library tooling")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check run books against the schema and cross-field rules")
    p.add_argument("files", nargs="*", help="run book files (default: every venues/*/runbook.yaml)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("generate", help="derive each overlay's ConnectivityProfile from the run books")
    p.add_argument("--check", action="store_true", help="fail if the checked-in files are out of date")
    p.add_argument("--venue", help="only this venue (another venue's unfinished run book does not block it)")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("build", help="render one overlay with kustomize")
    p.add_argument("venue")
    p.add_argument("env", choices=paths.ENVIRONMENTS)
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("build-all", help="render every overlay into a directory")
    p.add_argument("-o", "--output", default="build/rendered")
    p.set_defaults(func=_cmd_build_all)

    p = sub.add_parser("check", help="the policy gate: kyverno and conftest over every overlay's effective model")
    p.add_argument("--venue", help="judge only this venue's overlays (the others still count for CompID uniqueness)")
    p.add_argument("--env", choices=paths.ENVIRONMENTS, help="judge only this environment's overlays")
    p.add_argument("--no-cache", action="store_true", help="judge everything again, ignoring .cache/gate")
    p.add_argument("--shard", metavar="I/N", help="judge only the I-th of N shards (a CI matrix job); writes its result for --merge")
    p.add_argument("--shard-output", metavar="FILE", help="where --shard writes (default build/gate/shard-I-of-N.json)")
    p.add_argument("--merge", nargs="+", metavar="FILE", help="join shard results, run the cross-overlay rules once and report")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("promote", help="promote a venue's image and run-book version to the next environment")
    p.add_argument("venue")
    p.add_argument("source", choices=("dev", "cert"))
    p.add_argument("target", choices=("cert", "prod"))
    p.add_argument("--dry-run", action="store_true", help="show the diff and run the gate, write nothing")
    p.set_defaults(func=_cmd_promote)

    p = sub.add_parser("policy-matrix", help="write policies/MATRIX.md: every rule with the fixtures it rejects and accepts")
    p.add_argument("--check", action="store_true")
    p.set_defaults(func=_cmd_policy_matrix)

    p = sub.add_parser("tools", help="install the pinned kustomize, conftest and kyverno into .tools/bin")
    p.set_defaults(func=_cmd_tools)

    p = sub.add_parser("stats", help="lines authored per venue versus lines rendered")
    p.set_defaults(func=_cmd_stats)
    drift.add_parser(sub)
    runbook_docs.add_parser(sub)
    dashboards.add_parser(sub)
    scaffold.add_parser(sub)
    orchestra.add_parser(sub)
    catalog.add_parser(sub)
    bench.add_parser(sub)
    reference.add_parser(sub)
    archetypes.add_parser(sub)
    gitops.add_parser(sub)
    sessions_cli.add_parser(sub)
    simulate.add_parser(sub)
    sim_manifests.add_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except VcplError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
