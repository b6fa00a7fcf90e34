"""The policy gate.

Each overlay is rendered once; the gate computes its effective model (vcpl.model) and hands
conftest one JSON document per overlay plus one library index, and hands kyverno every distinct
rendered object once. Findings come back grouped by venue / environment / object / rule with the
field and a fix. Several whole catalogues (cases) can be gated in one run: identical overlays and
identical objects are evaluated once, which is what lets the mutation suite gate hundreds of
variants of the catalogue in one kyverno and one conftest launch.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from vcpl import alerts, cache, composition, model, paths, protocols, render, runbook, tools, yamlio
from vcpl.errors import VcplError

KYVERNO_POLICIES = paths.ROOT / "policies" / "kyverno"
REGO_POLICIES = paths.ROOT / "policies" / "rego"
_FIX = re.compile(r"\s*Fix:\s*(?P<fix>.*)$", re.S)
_FIELD = re.compile(r"^(?P<field>[A-Za-z][\w.\[\]/*-]*(?:\[[^\]]*\])?[\w.\[\]/*-]*):\s")
# Pod Security failures name the field inside their message.
_PSS_FIELD = re.compile(r"field error list: \[(?P<field>[\w.\[\]]+)(?: is forbidden|: Required value)")
WORKERS = 2
# Distinct objects above which kyverno runs as two launches side by side (measured on 2 cores).
KYVERNO_SPLIT = 1000


@dataclass(frozen=True)
class Finding:
    engine: str
    policy: str
    rule: str
    venue: str
    environment: str
    obj: str
    field: str
    message: str
    fix: str


@dataclass(frozen=True)
class OverlayInput:
    """Everything the gate needs to judge one overlay, independent of where it was rendered."""
    env: str
    venue: str
    rendered: str
    runbook: dict[str, Any]
    platform: dict[str, Any]
    components: tuple[str, ...]

    @cached_property
    def digest(self) -> str:
        material = json.dumps([self.env, self.venue, self.rendered, self.runbook, self.platform, self.components], sort_keys=True, default=str)
        return hashlib.sha256(material.encode()).hexdigest()[:24]


@dataclass
class GateResult:
    findings: list[Finding]
    overlays: list[tuple[str, str]]
    seconds: dict[str, float] = field(default_factory=dict)
    # Overlays in the catalogue, modelled afresh, judged afresh by conftest and by kyverno.
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def overlays_under(root: Path) -> list[tuple[str, str]]:
    return [(k.parent.parent.name, k.parent.name) for k in sorted((root / "overlays").glob("*/*/kustomization.yaml"))]


def _platform(root: Path) -> dict[str, Any]:
    path = root / "platform" / "platform.yaml"
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yamlio.SafeLoader)
    if not isinstance(data, dict) or not isinstance(data.get("environments"), dict):
        raise VcplError(f"{path}: environments: expected a mapping of environment -> cluster facts")
    return data["environments"]


def _expected(item: OverlayInput, namespace: str) -> dict[str, Any]:
    rules = alerts.alert_rules(item.runbook, item.env, namespace)
    rules += [r for g in alerts.clock_rule_groups(item.runbook, item.env, namespace) for r in g["rules"]]
    return {
        "alerts": sorted({r["alert"] for r in rules}),
        "components": composition.expected(item.runbook, item.env),
        # Services the FIX engine drives (registry engine quickfix): they need QuickFIX settings.
        "quickfixServices": sorted(s["name"] for s in item.runbook["services"] if protocols.is_quickfix(s)),
    }


def build_model(item: OverlayInput, objects: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The effective model of one overlay; `objects` when its rendered text is already parsed."""
    try:
        return _model_of(item, objects if objects is not None else yamlio.load_all(item.rendered))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # kustomize accepts shapes the API server would refuse; say which overlay, not a traceback.
        raise VcplError(f"overlays/{item.env}/{item.venue}: the rendered objects cannot be modelled "
                        f"({type(exc).__name__}: {exc}); expected objects the Kubernetes API accepts") from None


def _model_of(item: OverlayInput, objects: list[dict[str, Any]]) -> dict[str, Any]:
    namespaces = sorted({(o.get("metadata") or {}).get("namespace", "") for o in objects} - {""})
    namespace = namespaces[0] if len(namespaces) == 1 else f"venue-{item.venue}-{item.env}"
    return model.build(venue=item.venue, environment=item.env, namespace=namespace, objects=objects,
                       runbook=item.runbook, platform=item.platform, components=list(item.components),
                       expected=_expected(item, namespace))


# ---------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------

def _split_fix(message: str) -> tuple[str, str]:
    match = _FIX.search(message)
    if not match:
        return message.strip(), ""
    return message[: match.start()].strip(), " ".join(match.group("fix").split())


def _object_digest(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:24]


def run_kyverno(objects: dict[str, dict[str, Any]], workdir: Path) -> dict[str, list[dict[str, str]]]:
    """Kyverno over distinct objects; returns object digest -> [{policy, rule, message}] of failures.

    Kyverno identifies a resource by kind/namespace/name, so distinct versions of one object are
    renamed apart (`name--vN`) inside a run and mapped back by digest."""
    if not objects:
        return {}
    names: dict[tuple[str, str, str], str] = {}
    renamed_from: dict[str, str] = {}
    versions: dict[tuple[str, str, str], int] = defaultdict(int)
    docs = []
    for digest, obj in objects.items():
        meta = obj.get("metadata") or {}
        key = (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))
        n = versions[key]
        versions[key] += 1
        renamed = obj if n == 0 else {**obj, "metadata": {**meta, "name": f"{key[2]}--v{n}"}}
        rmeta = renamed["metadata"]
        if n:
            renamed_from[digest] = f"{key[2]}--v{n}"
        names[(key[0], key[1], str(rmeta.get("name")))] = digest
        docs.append(renamed)
    # One launch costs about 0.7 s before the first object: split only when the objects outweigh it.
    chunks = [docs[i::WORKERS] for i in range(WORKERS)] if len(docs) > KYVERNO_SPLIT else [docs]
    policies = [str(p) for p in sorted(KYVERNO_POLICIES.glob("*/*.yaml")) if p.stem == p.parent.name]

    def one(index_chunk: tuple[int, list[dict[str, Any]]]) -> dict[str, Any]:
        index, chunk = index_chunk
        path = workdir / f"kyverno-{index}.yaml"
        # JSON documents are YAML documents, and far quicker to write than YAML.
        path.write_text("".join(f"---\n{json.dumps(doc)}\n" for doc in chunk), encoding="utf-8")
        result = subprocess.run([render.tool("kyverno"), "apply", *policies, "--policy-report", "--output-format", "json",
                                 "--resource", str(path)], capture_output=True, text=True, env=render.tool_env("kyverno"))
        start = result.stdout.find("{")
        try:
            if start >= 0:
                return json.loads(result.stdout[start:])
        except json.JSONDecodeError:
            pass
        raise VcplError(f"kyverno apply produced no policy report:\n{result.stdout.strip()[-1000:]}\n{result.stderr.strip()[-2000:]}")

    failures: dict[str, list[dict[str, str]]] = defaultdict(list)
    with ThreadPoolExecutor(WORKERS) as pool:
        reports = list(pool.map(one, enumerate(chunks)))
    for report in reports:
        for item in report.get("results") or []:
            if item.get("result") not in ("fail", "error"):
                continue
            for res in item.get("resources", []):
                owner = names.get((str(res["kind"]), str(res.get("namespace", "")), str(res["name"])))
                if owner:
                    message = " ".join(item.get("message", "").split())
                    if owner in renamed_from:
                        message = message.replace(renamed_from[owner], renamed_from[owner].rsplit("--v", 1)[0])
                    failures[owner].append({"policy": item["policy"], "rule": item["rule"], "message": message})
    return failures


def _kyverno_finding(failure: dict[str, str], obj: dict[str, Any], env: str, venue: str) -> Finding:
    text, fix = _split_fix(failure["message"])
    match = _FIELD.match(text) or _PSS_FIELD.search(text)
    return Finding(
        engine="kyverno", policy=failure["policy"], rule=failure["rule"], venue=venue, environment=env,
        obj=f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}",
        field=match.group("field") if match else "spec",
        message=text[match.end():].strip() if match and match.re is _FIELD else text,
        fix=fix or f"see policies/kyverno/{failure['policy']}/README.md",
    )


def _without_prefix(message: str, field_path: str) -> str:
    """Rego messages start with `[rule] venue/env Kind/name field:`; the report prints those already."""
    marker = f"{field_path}: "
    if message.startswith("[") and marker in message:
        return message.split(marker, 1)[1]
    return message


def run_conftest(files: list[Path]) -> dict[str, list[Finding]]:
    """conftest over one document per file; returns file name -> findings."""
    if not files:
        return {}
    chunks = [files[i::WORKERS] for i in range(WORKERS)] if len(files) > 100 else [files]

    def one(chunk: list[Path]) -> list[dict[str, Any]]:
        cmd = [render.tool("conftest"), "test", "--all-namespaces", "--no-color", "-p", str(REGO_POLICIES), "-o", "json", *map(str, chunk)]
        result = subprocess.run(cmd, capture_output=True, text=True, env=render.tool_env("conftest"))
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError:
            raise VcplError(f"conftest failed:\n{result.stdout.strip()[-2000:]}\n{result.stderr.strip()[-2000:]}") from None

    found: dict[str, list[Finding]] = defaultdict(list)
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = [entry for chunk in pool.map(one, chunks) for entry in chunk]
    for entry in outcomes:
        name = Path(entry.get("filename", "")).name
        for failure in entry.get("failures") or []:
            details = (failure.get("metadata") or {}).get("details") or {}
            found[name].append(Finding(
                engine="rego",
                policy=entry.get("namespace", "").removeprefix("vcpl."),
                rule=details.get("rule", "?"),
                venue=details.get("venue", "?"),
                environment=details.get("environment", "?"),
                obj=details.get("object", "?"),
                field=details.get("field", "?"),
                message=_without_prefix(failure["msg"], details.get("field", "")),
                fix=details.get("fix", ""),
            ))
    return found


# ---------------------------------------------------------------------------
# The gate
# ---------------------------------------------------------------------------

def engine_versions() -> dict[str, str]:
    """What a cached outcome depends on besides the overlay: the rules, the code that builds the
    model, and the pinned tools (their version stamps)."""
    scripts = paths.ROOT / "scripts" / "vcpl"
    stamps = {name: tools.installed_stamp(name) for name in ("kustomize", "conftest", "kyverno")}
    code = cache.tree_digest(scripts, "*.py")
    return {
        "rego": cache.digest(cache.tree_digest(REGO_POLICIES), code, stamps["conftest"]),
        "kyverno": cache.digest(cache.tree_digest(KYVERNO_POLICIES), code, stamps["kyverno"]),
        "index": code,
        "render": stamps["kustomize"],
    }


def _finding_from(data: dict[str, Any]) -> Finding:
    return Finding(**data)


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(set(findings), key=lambda f: (f.venue, f.environment, f.obj, f.rule, f.field, f.message))


@dataclass
class Judgement:
    """One overlay's outcome: its own findings and its contribution to the library index."""
    findings: list[Finding]
    entries: list[dict[str, Any]]


def _engines(items: dict[str, OverlayInput], for_rego: list[str], for_kyverno: list[str], entries: dict[str, list[dict[str, Any]]],
             indexes: dict[str, list[OverlayInput]], seconds: dict[str, float]) -> tuple[dict[str, list[Finding]], dict[str, list[Finding]], dict[str, list[Finding]]]:
    """Model the overlays that need it and run the engines, overlapped: kyverno starts on the
    distinct rendered objects while the models are built, then conftest judges the models and the
    library indexes (one per distinct group of index entries; `entries` is completed in place).
    Returns findings by overlay digest (rego, kyverno) and by index group name."""
    started = time.perf_counter()
    needed = [d for d in items if d in for_rego or d in for_kyverno or d not in entries]
    parsed = {d: yamlio.load_all(items[d].rendered) for d in needed}
    objects: dict[str, dict[str, Any]] = {}
    occurs: dict[str, list[str]] = {}
    for digest in for_kyverno:
        occurs[digest] = []
        for obj in parsed[digest]:
            od = _object_digest(obj)
            objects.setdefault(od, obj)
            occurs[digest].append(od)
    def timed(step: str, run: Any, *args: Any) -> Any:
        began = time.perf_counter()
        try:
            return run(*args)
        finally:
            seconds[step] = time.perf_counter() - began

    with tempfile.TemporaryDirectory(prefix="vcpl-gate-") as tmp, ThreadPoolExecutor(2) as pool:
        workdir = Path(tmp)
        kyverno_job = pool.submit(timed, "kyverno", run_kyverno, objects, workdir)
        files = []
        for digest in needed:
            doc = build_model(items[digest], parsed[digest])
            entries.setdefault(digest, model.index_entries(doc))
            if digest in for_rego:
                path = workdir / f"overlay-{digest}.json"
                path.write_text(json.dumps(doc), encoding="utf-8")
                files.append(path)
        group_key: dict[str, str] = {}
        for name, group in indexes.items():
            # Groups that differ only in overlays the index does not see share one document.
            doc = model.library_index([entries[i.digest] for i in group])
            group_key[name] = cache.digest(doc)
            path = workdir / f"index-{group_key[name]}.json"
            if not path.exists():
                path.write_text(json.dumps(doc), encoding="utf-8")
                files.append(path)
        seconds["model"] = time.perf_counter() - started
        conftest_job = pool.submit(timed, "conftest", run_conftest, files)
        failures = kyverno_job.result()
        by_file = conftest_job.result()
    seconds["engines"] = time.perf_counter() - started
    rego = {d: by_file.get(f"overlay-{d}.json", []) for d in for_rego}
    library = {name: by_file.get(f"index-{key}.json", []) for name, key in group_key.items()}
    kyverno_found = {
        digest: [_kyverno_finding(f, objects[od], items[digest].env, items[digest].venue) for od in occurs[digest] for f in failures.get(od, [])]
        for digest in for_kyverno
    }
    return rego, kyverno_found, library


def judge(items: list[OverlayInput], store: cache.Cache | None = None, scope: set[tuple[str, str]] | None = None,
          indexes: dict[str, list[OverlayInput]] | None = None, seconds: dict[str, float] | None = None,
          counts: dict[str, int] | None = None) -> tuple[dict[str, Judgement], dict[str, list[Finding]]]:
    """Judge distinct overlays (by digest) and, in the same engine launches, the library indexes
    built from the named groups of overlays. With a cache, an overlay whose content, rules, model
    code and tools are unchanged is not judged again; with a scope, overlays outside it only
    contribute their index entries."""
    seconds = seconds if seconds is not None else {}
    versions = engine_versions()
    unique = {item.digest: item for item in items}

    def key(kind: str, digest: str) -> str:
        return cache.digest(kind, digest, versions[kind])

    rego: dict[str, list[Finding]] = {}
    kyverno_found: dict[str, list[Finding]] = {}
    entries: dict[str, list[dict[str, Any]]] = {}
    for digest, item in unique.items():
        if scope is not None and (item.env, item.venue) not in scope:
            rego[digest], kyverno_found[digest] = [], []
        if store is None:
            continue
        for kind, target in (("rego", rego), ("kyverno", kyverno_found)):
            if digest not in target:
                hit = store.get_json(kind, key(kind, digest))
                if hit is not None:
                    target[digest] = [_finding_from(f) for f in hit]
        hit = store.get_json("index", key("index", digest))
        if hit is not None:
            entries[digest] = hit
    for_rego = [d for d in unique if d not in rego]
    for_kyverno = [d for d in unique if d not in kyverno_found]
    fresh_entries = [d for d in unique if d not in entries]
    if counts is not None:
        counts.update(overlays=len(unique), modelled=len(set(for_rego) | set(for_kyverno) | set(fresh_entries)),
                      rego=len(for_rego), kyverno=len(for_kyverno))
    new_rego, new_kyverno, library = _engines(unique, for_rego, for_kyverno, entries, indexes or {}, seconds)
    rego.update(new_rego)
    kyverno_found.update(new_kyverno)
    if store is not None:
        for digest in fresh_entries:
            store.put_json("index", key("index", digest), entries[digest])
        for digest in for_rego:
            store.put_json("rego", key("rego", digest), [asdict(f) for f in rego[digest]])
        for digest in for_kyverno:
            store.put_json("kyverno", key("kyverno", digest), [asdict(f) for f in kyverno_found[digest]])
    judgements = {d: Judgement(rego[d] + kyverno_found[d], entries[d]) for d in unique}
    return judgements, library


def evaluate(cases: dict[str, list[OverlayInput]], seconds: dict[str, float] | None = None,
             store: cache.Cache | None = None, scope: set[tuple[str, str]] | None = None,
             counts: dict[str, int] | None = None) -> dict[str, list[Finding]]:
    """Gate several whole catalogues at once; each case's findings, sorted. Overlays shared by
    cases are judged once. With a scope of (env, venue) pairs only those overlays are judged; the
    others still count in the rules that span the catalogue (a CompID another venue already
    uses), whose findings are kept for the scope."""
    unique = list({item.digest: item for items in cases.values() for item in items}.values())
    judgements, library = judge(unique, store, scope, cases, seconds, counts)
    results: dict[str, list[Finding]] = {}
    for case, items in cases.items():
        findings = list(library[case])
        for item in items:
            findings += judgements[item.digest].findings
        if scope is not None:
            findings = [f for f in findings if (f.environment, f.venue) in scope]
        results[case] = _sorted(findings)
    return results


def _render_cached(root: Path, env: str, venue: str, salt: str, store: cache.Cache | None, memo: dict[Path, Any]) -> str:
    directory = root / "overlays" / env / venue
    if store is None:
        return render.build_dir(directory)
    key = cache.inputs_digest(directory, salt, memo)
    text = store.get("render", key)
    if text is None:
        text = render.build_dir(directory)
        store.put("render", key, text)
    return text


def load_overlays(root: Path = paths.ROOT, overlays: list[tuple[str, str]] | None = None,
                  store: cache.Cache | None = None) -> list[OverlayInput]:
    """Render and load every overlay (env, venue) of the repository at `root`."""
    wanted = overlays if overlays is not None else overlays_under(root)
    salt = engine_versions()["render"] if store is not None else ""
    memo: dict[Path, Any] = {}  # folder digests, shared by the overlays of this one load
    with ThreadPoolExecutor(WORKERS) as pool:
        # kustomize runs in child processes; the run books and compositions load meanwhile.
        texts = pool.map(lambda ev: _render_cached(root, ev[0], ev[1], salt, store, memo), wanted)
        platform = _platform(root)
        books: dict[str, dict[str, Any]] = {}
        for _, venue in wanted:
            if venue not in books:
                books[venue] = runbook.load(root / "venues" / venue / "runbook.yaml")
        composed = [tuple(composition.composed(root / "overlays" / env / venue, root / "components")) for env, venue in wanted]
        return [
            OverlayInput(env, venue, text, books[venue], platform.get(env) or {}, components)
            for (env, venue), text, components in zip(wanted, texts, composed)
        ]


def check(root: Path = paths.ROOT, scope: set[tuple[str, str]] | None = None, use_cache: bool = False) -> GateResult:
    """Render and gate the catalogue at `root`: every overlay, or only the (env, venue) pairs of
    `scope` (the rest of the catalogue still feeds the cross-overlay rules)."""
    store = cache.Cache(root / ".cache" / "gate") if use_cache else None
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    items = load_overlays(root, None, store)
    if scope is not None and not any((i.env, i.venue) in scope for i in items):
        known = ", ".join(f"{i.env}/{i.venue}" for i in items)
        raise VcplError(f"no overlay matches {sorted(scope)}; expected one of: {known}")
    seconds["render"] = time.perf_counter() - started
    counts: dict[str, int] = {}
    findings = evaluate({"catalogue": items}, seconds, store, scope, counts)["catalogue"]
    seconds["total"] = time.perf_counter() - started
    judged = sorted((i.env, i.venue) for i in items if scope is None or (i.env, i.venue) in scope)
    return GateResult(findings=findings, overlays=judged, seconds=seconds, counts=counts)


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` with 1 <= i <= n, as CI matrices number their jobs."""
    try:
        index, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise VcplError(f"--shard {text!r}: expected i/n, e.g. 2/4") from None
    if not 1 <= index <= total:
        raise VcplError(f"--shard {text!r}: expected 1 <= i <= n")
    return index, total


def check_shard(root: Path, index: int, total: int, use_cache: bool = False) -> dict[str, Any]:
    """Gate one shard of the catalogue (every n-th overlay from the i-th): its findings and its
    library-index entries, for `merge_shards` to complete with the rules that span overlays."""
    store = cache.Cache(root / ".cache" / "gate") if use_cache else None
    mine = overlays_under(root)[index - 1::total]
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    items = load_overlays(root, mine, store)
    seconds["render"] = time.perf_counter() - started
    judgements, _ = judge(items, store, seconds=seconds)
    seconds["total"] = time.perf_counter() - started
    return {
        "kind": "GateShard",
        "shard": [index, total],
        "overlays": [[i.env, i.venue] for i in items],
        "findings": [asdict(f) for i in items for f in judgements[i.digest].findings],
        "entries": [e for i in items for e in judgements[i.digest].entries],
        "seconds": seconds,
    }


def merge_shards(shards: list[dict[str, Any]]) -> GateResult:
    """Join shard results, refusing an incomplete or mixed set, and run the cross-overlay rules once."""
    if not shards:
        raise VcplError("no shard results to merge")
    totals = {tuple(s.get("shard") or (0, 0))[1] for s in shards}
    indexes = sorted(tuple(s.get("shard") or (0, 0))[0] for s in shards)
    if len(totals) != 1 or indexes != list(range(1, next(iter(totals)) + 1)):
        raise VcplError(f"shard results {indexes} of {sorted(totals)}: expected each of 1..n exactly once, from one split")
    entries = [e for s in shards for e in s["entries"]]
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vcpl-gate-") as tmp:
        path = Path(tmp) / "index.json"
        path.write_text(json.dumps(model.library_index([entries])), encoding="utf-8")
        library = run_conftest([path]).get("index.json", [])
    findings = [_finding_from(f) for s in shards for f in s["findings"]] + library
    overlays = sorted((env, venue) for s in shards for env, venue in s["overlays"])
    return GateResult(findings=_sorted(findings), overlays=overlays, seconds=seconds)


def report(result: GateResult) -> str:
    if result.ok:
        return f"gate passed: {len(result.overlays)} overlays, kyverno and conftest found nothing"
    grouped: dict[tuple[str, str], dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for finding in result.findings:
        grouped[(finding.venue, finding.environment)][finding.obj].append(finding)
    lines = [f"gate FAILED: {len(result.findings)} finding(s)"]
    for (venue, env), objects in sorted(grouped.items()):
        lines.append(f"\n{venue} / {env}")
        for obj, findings in sorted(objects.items()):
            lines.append(f"  {obj}")
            for f in findings:
                lines.append(f"    [{f.engine}:{f.rule}] {f.field}: {f.message}")
                if f.fix:
                    lines.append(f"      fix: {f.fix}")
    return "\n".join(lines)
