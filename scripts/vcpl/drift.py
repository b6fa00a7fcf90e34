"""Drift: what a live cluster holds that differs from an overlay's rendered manifests.

`kubectl diff` does the comparison (it asks the API server for a dry-run apply, so server defaults
and admission mutations are on both sides); this module runs it, parses its unified-diff output and
reports one line per drifted object.

kubectl writes each object to `<tmp>/LIVE-<n>/<file>` and `<tmp>/MERGED-<n>/<file>` and diffs the
two directories; `<file>` is `<group>.<version>.<Kind>.<namespace>.<name>` (no group for the core
API, an empty namespace for cluster-scoped objects). An object absent from the cluster has an
empty LIVE file, so its diff is additions only.

Field paths are an approximation read from the diff's text, not from parsed YAML: each changed line's
parents are the nearest lines above it with less indentation (kubectl prints YAML with sorted keys,
two-space indents and list items at their parent key's indent). List items are named by their
`name:` key, else by position. The path stops at a label/annotation map (its keys hold dots) and at a
key whose value is text on its own line (`data.gateway.json`, not the JSON inside). `vcpl drift` asks
diff for the whole file as context, so parents are always present and paths are exact; a recording
made with plain `kubectl diff` has three lines of context, so a path whose top is out of sight is
shown with a leading `...` (e.g. `...image`).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vcpl import paths, render
from vcpl.errors import VcplError

MISSING = "missing-in-cluster"
CHANGED = "changed"
# kubectl appends these words to the diff program's arguments. A context larger than any object
# puts every parent key into the hunk, which makes field paths exact; -N keeps absent files empty.
FULL_CONTEXT_DIFF = "diff -N -U 100000"
# Maps whose keys are data, not schema: a changed entry is reported as the map itself.
OPAQUE_MAPS = frozenset({"labels", "annotations", "matchLabels", "nodeSelector"})
# Paths the API server changes on its own; a change there is not drift.
NOISE_PATHS = frozenset({"metadata.generation"})
INSTALL_KUBECTL = "install kubectl (https://kubernetes.io/docs/tasks/tools/) or pass --kubectl /path/to/kubectl"

_HUNK = re.compile(r"^@@ -(?:\d+)(?:,(?P<old>\d+))? \+(?:\d+)(?:,(?P<new>\d+))? @@")
_KEY = re.compile(
    r"""^(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s"'#{}\[\],][^#]*?)\s*:(?:\s+(?P<value>.*))?$"""
)
_GENERATION = re.compile(r"^  generation: \d+$")


@dataclass(frozen=True)
class ObjectDrift:
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str
    status: str  # MISSING or CHANGED
    added: int
    removed: int
    fields: tuple[str, ...]  # empty for missing objects: everything is missing


@dataclass
class _FileDiff:
    """One object's section of the diff: its kubectl file name and each hunk's lines as (tag, text)."""

    file_name: str
    hunks: list[list[tuple[str, str]]]


@dataclass(frozen=True)
class _Node:
    """One level of YAML structure on a line: a `key:`, a `- ` list item, or plain text."""

    column: int
    kind: str  # "key" | "item" | "text"
    key: str = ""
    value: str = ""


# ---------------------------------------------------------------- running kubectl


def _find_kubectl(kubectl: str) -> str:
    """The executable to run; a path is taken as is, a bare name is looked up on PATH."""
    if os.sep in kubectl or "/" in kubectl:
        if not Path(kubectl).is_file():
            raise VcplError(f"kubectl not found at {kubectl}; {INSTALL_KUBECTL}")
        return kubectl
    found = shutil.which(kubectl)
    if not found:
        raise VcplError(f"{kubectl} is not on PATH; {INSTALL_KUBECTL}")
    return found


def run_kubectl_diff(rendered_yaml: str, kubectl: str = "kubectl", context: str | None = None) -> str:
    """`kubectl diff -f -` of the rendered manifests against the cluster; returns the diff text."""
    command = [_find_kubectl(kubectl)]
    if context:
        command += ["--context", context]
    command += ["diff", "-f", "-"]
    # Our own diff program on purpose: a user's KUBECTL_EXTERNAL_DIFF (colordiff, dyff) is unparseable.
    env = {**os.environ, "KUBECTL_EXTERNAL_DIFF": FULL_CONTEXT_DIFF}
    try:
        result = subprocess.run(command, input=rendered_yaml, capture_output=True, text=True, encoding="utf-8", env=env)
    except OSError as exc:
        raise VcplError(f"cannot run {command[0]}: {exc.strerror or exc}; {INSTALL_KUBECTL}") from exc
    stderr = result.stderr.strip()
    # 0 = same, 1 = differences, >1 = kubectl or diff failed. Old kubectl versions also exit 1 on
    # errors, so 1 without a diff is a failure too.
    if result.returncode not in (0, 1) or (result.returncode == 1 and not result.stdout.strip()):
        raise VcplError(f"kubectl diff failed (exit {result.returncode}):\n{stderr or '(no message on stderr)'}")
    if stderr:
        print(stderr, file=sys.stderr)  # warnings (deprecations, admission) stay visible
    return result.stdout


# ---------------------------------------------------------------- parsing the diff


def _object_id(file_name: str) -> tuple[str, str, str]:
    """(kind, namespace, name) from `<group>.<version>.<Kind>.<namespace>.<name>`.

    Groups contain dots and names may too, but groups and versions are lower case and namespaces
    have no dots: the Kind is the first token starting with an upper-case letter, the namespace is
    the token after it. kubectl writes cluster-scoped objects as `Kind..name` (empty namespace);
    `Kind.name` is accepted too, which reads a dotted cluster-scoped name as namespace + name.
    """
    tokens = file_name.split(".")
    for index, token in enumerate(tokens):
        if token[:1].isupper():
            rest = tokens[index + 1:]
            if not rest or not "".join(rest):
                break
            if len(rest) == 1:
                return token, "", rest[0]
            return token, rest[0], ".".join(rest[1:])
    raise VcplError(f"cannot read an object from kubectl diff file name {file_name!r}; expected <group>.<version>.<Kind>.<namespace>.<name>")


def _file_name(header: str) -> str:
    """The base name of the path in a `--- ` / `+++ ` line; a tab separates the path from the time."""
    path = header[4:].split("\t", 1)[0].strip()
    return re.split(r"[\\/]", path)[-1]


def _read_hunk(lines: list[str], start: int, old: int, new: int) -> tuple[list[tuple[str, str]], int]:
    """The hunk's lines from `start`, consuming exactly the counts of its header."""
    body = []
    index = start
    while old > 0 or new > 0:
        if index >= len(lines):
            raise VcplError(f"kubectl diff output ends inside a hunk (line {index}): truncated recording?")
        line = lines[index]
        index += 1
        tag, text = line[:1], line[1:]
        if tag == "\\":  # "\ No newline at end of file"
            continue
        if line == "":
            tag = " "  # editors and some tools strip the space of an empty context line
        if tag not in " +-":
            raise VcplError(f"unexpected line {index} in a kubectl diff hunk: {line!r}")
        old -= tag in " -"
        new -= tag in " +"
        body.append((tag, text))
    return body, index


def _split(text: str) -> list[_FileDiff]:
    """Per-object sections; lines outside hunks other than file headers (the `diff ...` line) are skipped."""
    lines = text.splitlines()
    files: list[_FileDiff] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith("+++ "):
            files.append(_FileDiff(_file_name(line), []))
            continue
        match = _HUNK.match(line)
        if not match:
            continue
        if not files:
            raise VcplError(f"kubectl diff hunk at line {index} has no +++ file header before it")
        old = int(match["old"] if match["old"] is not None else 1)
        new = int(match["new"] if match["new"] is not None else 1)
        body, index = _read_hunk(lines, index, old, new)
        files[-1].hunks.append(body)
    if not files and text.strip():
        raise VcplError("no object diffs found: the input is not `kubectl diff` output")
    return files


def _nodes(line: str) -> list[_Node]:
    """The structure a YAML line opens, outermost first; blank lines open nothing."""
    stripped = line.lstrip(" ")
    column = len(line) - len(stripped)
    nodes = []
    while stripped == "-" or stripped.startswith("- "):
        nodes.append(_Node(column, "item"))
        rest = stripped[1:].lstrip(" ")
        column += len(stripped) - len(rest)
        stripped = rest
    if not stripped:
        return nodes
    match = _KEY.match(stripped)
    if match and not _looks_like_json(stripped):
        nodes.append(_Node(column, "key", _unquote(match["key"]), (match["value"] or "").strip()))
    else:
        nodes.append(_Node(column, "text"))
    return nodes


def _looks_like_json(stripped: str) -> bool:
    # JSON inside a block scalar (ConfigMap data) has `"key": value` lines; they are text, not keys.
    return stripped[0] in "{}[]" or (stripped[0] == '"' and stripped.rstrip().endswith(("{", "[", ",")))


def _unquote(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'":
        return key[1:-1]
    return key


def _is_parent(candidate: _Node, child: _Node) -> bool:
    # kubectl indents list items at their key's column, so a key at the same column owns an item.
    if child.kind == "item" and candidate.kind == "key":
        return candidate.column <= child.column
    return candidate.column < child.column


def _chain(side: list[str], target: int) -> list[tuple[int, _Node]]:
    """(line index, node) from the outermost parent found in the hunk down to the target line."""
    own = _nodes(side[target]) or [_Node(sys.maxsize, "text")]  # a blank line belongs to what is above
    chain = [(target, node) for node in own]
    for index in range(target - 1, -1, -1):
        if chain[0][1].column == 0:
            break
        head = chain[0][1]
        parents = [node for node in _nodes(side[index]) if _is_parent(node, head)]
        chain = [(index, node) for node in parents] + chain
    return chain


def _item_name(side: list[str], index: int, item: _Node) -> str | None:
    """The `name:` of the list item opening at side[index], if the hunk shows it."""
    key_column: int | None = None
    for line_index in range(index, len(side)):
        nodes = _nodes(side[line_index])
        if line_index == index:
            nodes = nodes[nodes.index(item) + 1:]
            if not nodes:
                return None  # a scalar item: no keys
            key_column = nodes[0].column
        elif nodes and nodes[0].column <= item.column:
            return None  # the next item or the parent's sibling: the item ended
        for node in nodes:
            if node.kind == "key" and node.column == key_column and node.key == "name" and node.value:
                return _unquote(node.value)
    return None


def _item_label(side: list[str], chain: list[tuple[int, _Node]], position: int) -> str:
    """`[name]`, else `[index]` counted from the parent, else `[?]` when the parent is out of sight."""
    index, item = chain[position]
    name = _item_name(side, index, item)
    if name:
        return f"[{name}]"
    if position == 0:
        return "[?]"
    parent_index = chain[position - 1][0]
    siblings = sum(
        1 for i in range(parent_index + 1, index) if any(n.kind == "item" and n.column == item.column for n in _nodes(side[i]))
    )
    return f"[{siblings}]"


def _path(side: list[str], target: int) -> str:
    """The dotted field path of side[target]; see the module docstring for the approximation."""
    chain = _chain(side, target)
    complete = chain[0][1].column == 0
    parts: list[str] = []
    for position, (_, node) in enumerate(chain):
        if node.kind == "text":
            break  # inside text (a folded or block scalar): the path ends at its key
        if node.kind == "item":
            parts.append(_item_label(side, chain, position))
            continue
        parts.append(node.key)
        is_last = position == len(chain) - 1
        if node.key in OPAQUE_MAPS or (node.value and not is_last):
            break
    if not complete:
        while parts and parts[0].startswith("["):
            parts.pop(0)  # an unnamed item with no known parent says nothing
        return "..." + _join(parts)
    return _join(parts)


def _join(parts: list[str]) -> str:
    text = ""
    for part in parts:
        text += part if part.startswith("[") or not text else "." + part
    return text


def _is_noise(path: str, line: str) -> bool:
    # With its parent out of sight (3-line context), a two-space `generation: N` is taken as
    # metadata's: built-in kinds have no other top-level field with a `generation` child.
    return path in NOISE_PATHS or (path == "...generation" and bool(_GENERATION.match(line)))


def _changes(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(tag, field path) of each changed line of one hunk that is not noise, each side read on its own.

    Hunks are read one at a time: the lines between two hunks are not in the diff, so a parent
    found across that gap would be wrong."""
    changes = []
    for tag in "-+":
        side = [text for line_tag, text in lines if line_tag in (" ", tag)]
        tags = [line_tag for line_tag, _ in lines if line_tag in (" ", tag)]
        for index, line_tag in enumerate(tags):
            if line_tag != tag:
                continue
            path = _path(side, index)
            if not _is_noise(path, side[index]):
                changes.append((tag, path))
    return changes


def _object_drift(section: _FileDiff) -> ObjectDrift | None:
    kind, namespace, name = _object_id(section.file_name)
    tags = [tag for hunk in section.hunks for tag, _ in hunk]
    if tags and all(tag == "+" for tag in tags):
        return ObjectDrift(kind, namespace, name, MISSING, len(tags), 0, ())
    changes = [change for hunk in section.hunks for change in _changes(hunk)]
    if not changes:
        return None  # only noise (or an empty section)
    fields = tuple(dict.fromkeys(path for _, path in changes))  # first-seen order, no repeats
    added = sum(tag == "+" for tag, _ in changes)
    return ObjectDrift(kind, namespace, name, CHANGED, added, len(changes) - added, fields)


def parse(text: str) -> list[ObjectDrift]:
    """The drifted objects in `kubectl diff` output, in its order; noise-only objects are left out."""
    drifts = [_object_drift(section) for section in _split(text)]
    return [drift for drift in drifts if drift is not None]


# ---------------------------------------------------------------- reporting and the CLI


def _object_ref(drift: ObjectDrift) -> str:
    scope = f"{drift.namespace}/" if drift.namespace else ""
    return f"{drift.kind}/{scope}{drift.name}"


def report(venue: str, env: str, drifts: list[ObjectDrift]) -> str:
    if not drifts:
        return f"{venue}/{env}: no drift"
    lines = []
    for drift in drifts:
        prefix = f"{venue}/{env} {_object_ref(drift)}:"
        if drift.status == MISSING:
            lines.append(f"{prefix} missing in cluster")
        else:
            lines.append(f"{prefix} changed (+{drift.added} -{drift.removed}) fields: {', '.join(drift.fields)}")
    return "\n".join(lines)


def _targets(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(env, venue) pairs to check; the argument combinations argparse cannot express are refused here."""
    if args.all:
        if args.venue or args.env:
            raise VcplError("give either VENUE ENV or --all, not both")
        if args.recorded:
            raise VcplError("--recorded holds one overlay's diff; it cannot be used with --all")
        return render.overlays()
    if not (args.venue and args.env):
        raise VcplError("give VENUE ENV (e.g. `vcpl drift cme prod`) or --all")
    if (args.env, args.venue) not in render.overlays():
        raise VcplError(f"no overlay {paths.relative(paths.overlay_dir(args.env, args.venue))}")
    return [(args.env, args.venue)]


def _diff_text(args: argparse.Namespace, env: str, venue: str) -> str:
    if args.recorded:
        try:
            return Path(args.recorded).read_text(encoding="utf-8")
        except OSError as exc:
            raise VcplError(f"cannot read recorded diff {args.recorded}: {exc.strerror or exc}") from exc
    try:
        return run_kubectl_diff(render.build(env, venue), kubectl=args.kubectl, context=args.context)
    except VcplError as exc:
        raise VcplError(f"{venue}/{env}: {exc}") from exc


def _cmd_drift(args: argparse.Namespace) -> int:
    drifted = False
    for env, venue in _targets(args):
        drifts = parse(_diff_text(args, env, venue))
        print(report(venue, env, drifts))
        drifted = drifted or bool(drifts)
    return 1 if drifted else 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "drift",
        help="compare rendered overlays with the live cluster (kubectl diff); exit 1 on drift",
    )
    p.add_argument("venue", nargs="?")
    p.add_argument("env", nargs="?", choices=paths.ENVIRONMENTS)
    p.add_argument("--all", action="store_true", help="every overlay, against the same cluster context")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.add_argument("--kubectl", default="kubectl", help="kubectl executable (default: kubectl on PATH)")
    p.add_argument("--recorded", metavar="FILE", help="read saved `kubectl diff` output instead of running kubectl")
    p.set_defaults(func=_cmd_drift)
    return p
