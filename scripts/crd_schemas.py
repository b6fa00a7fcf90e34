#!/usr/bin/env python3
"""Generate offline JSON schemas (kubeconform layout) from vendored CRDs.

Reads every CustomResourceDefinition under ``tests/schemas/crds/source/`` and
writes, for each served version, ``tests/schemas/crds/<group>/<kind>_<version>.json``
(kind in lower case) containing that version's ``openAPIV3Schema`` converted
for plain JSON-Schema validation:

* root ``apiVersion`` / ``kind`` are pinned with a one-value ``enum`` and are
  required; root ``metadata`` is left permissive (``type: object``);
* ``x-kubernetes-int-or-string: true`` becomes
  ``anyOf: [{type: string}, {type: integer}]`` (any ``type`` is dropped);
* ``nullable: true`` becomes "null is also allowed";
* every object schema with ``properties``, no ``additionalProperties`` and no
  ``x-kubernetes-preserve-unknown-fields: true`` gets
  ``additionalProperties: false`` so misspelled fields are rejected;
* ``description`` keywords are dropped;
* a Go-style pattern that starts with ``^(?flags)`` is rewritten to the
  equivalent ``(?flags)^`` so that regex engines which only accept global
  flags at the very start (e.g. Python's ``re``) can compile it.

Output is JSON with sorted keys, ``indent=1`` and a trailing newline, so it is
deterministic.  ``--check`` regenerates in memory and exits 1, listing the
files that are missing, different or stale, without writing anything.

Usage::

    python scripts/crd_schemas.py           # (re)write the JSON files
    python scripts/crd_schemas.py --check   # verify they are up to date
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CRD_DIR = REPO_ROOT / "tests" / "schemas" / "crds"
SOURCE_SUBDIR = "source"
# Sub-directories of the output dir that never hold generated schemas.
NON_SCHEMA_SUBDIRS = frozenset({SOURCE_SUBDIR, "examples"})

Schema = dict[str, Any]

# "^(?i)abc" -> "(?i)^abc": same meaning, but portable to Python's re.
_LEADING_FLAGS = re.compile(r"^\^\(\?([a-zA-Z]+)\)")


class CrdError(Exception):
    """A source file is not a CRD this script can convert."""


# --------------------------------------------------------------------------
# schema conversion
# --------------------------------------------------------------------------

def _allow_null(node: Schema) -> None:
    """Let ``node`` also accept JSON null (the meaning of ``nullable: true``)."""
    typ = node.get("type")
    if isinstance(typ, str):
        node["type"] = [typ, "null"]
    elif isinstance(typ, list) and "null" not in typ:
        node["type"] = [*typ, "null"]
    elif typ is None and isinstance(node.get("anyOf"), list):
        if {"type": "null"} not in node["anyOf"]:
            node["anyOf"] = [*node["anyOf"], {"type": "null"}]
    if isinstance(node.get("enum"), list) and None not in node["enum"]:
        node["enum"] = [*node["enum"], None]


def convert_schema(node: Any, strict: bool = True) -> Any:
    """Return a JSON-Schema copy of one OpenAPI v3 (structural) schema node.

    ``strict`` is False inside ``anyOf``/``oneOf``/``allOf``/``not``: there the
    sub-schemas only restate part of the object, so closing them with
    ``additionalProperties: false`` would reject valid documents.
    """
    if not isinstance(node, dict):
        return copy.deepcopy(node)

    out: Schema = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: convert_schema(sub, strict) for name, sub in value.items()}
        elif key == "items":
            if isinstance(value, list):
                out[key] = [convert_schema(sub, strict) for sub in value]
            else:
                out[key] = convert_schema(value, strict)
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = convert_schema(value, strict)
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[key] = [convert_schema(sub, False) for sub in value]
        elif key == "not":
            out[key] = convert_schema(value, False)
        else:
            out[key] = copy.deepcopy(value)

    if isinstance(out.get("pattern"), str):
        out["pattern"] = _LEADING_FLAGS.sub(r"(?\1)^", out["pattern"])

    if out.get("x-kubernetes-int-or-string") is True:
        out.pop("type", None)
        out["anyOf"] = [{"type": "string"}, {"type": "integer"}]

    if out.pop("nullable", False) is True:
        _allow_null(out)

    if out.get("x-kubernetes-embedded-resource") is True and isinstance(out.get("properties"), dict):
        props = out["properties"]
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})

    if (
        strict
        and isinstance(out.get("properties"), dict)
        and "additionalProperties" not in out
        and out.get("x-kubernetes-preserve-unknown-fields") is not True
    ):
        out["additionalProperties"] = False

    return out


def version_schema(group: str, kind: str, version: str, openapi: Schema) -> Schema:
    """Convert one version's ``openAPIV3Schema`` and pin the root fields."""
    root: Schema = convert_schema(openapi)
    root["type"] = "object"
    props = root.setdefault("properties", {})
    props["apiVersion"] = {"enum": [f"{group}/{version}"], "type": "string"}
    props["kind"] = {"enum": [kind], "type": "string"}
    props["metadata"] = {"type": "object"}
    required = [r for r in root.get("required", []) if r not in ("apiVersion", "kind")]
    root["required"] = ["apiVersion", "kind", *required]
    if root.get("x-kubernetes-preserve-unknown-fields") is not True:
        root["additionalProperties"] = False
    return root


# --------------------------------------------------------------------------
# reading CRDs
# --------------------------------------------------------------------------

def find_descriptions(node: Any, path: str = "") -> Iterator[str]:
    """Yield schema paths where a ``description`` keyword is still present."""
    if not isinstance(node, dict):
        return
    if "description" in node:
        yield path or "/"
    for name, sub in (node.get("properties") or {}).items():
        yield from find_descriptions(sub, f"{path}/properties/{name}")
    items = node.get("items")
    if isinstance(items, list):
        for i, sub in enumerate(items):
            yield from find_descriptions(sub, f"{path}/items/{i}")
    else:
        yield from find_descriptions(items, f"{path}/items")
    yield from find_descriptions(node.get("additionalProperties"), f"{path}/additionalProperties")
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(node.get(key) or []):
            yield from find_descriptions(sub, f"{path}/{key}/{i}")
    yield from find_descriptions(node.get("not"), f"{path}/not")


def load_crds(source_dir: Path) -> Iterator[tuple[Path, Schema]]:
    """Yield (file, document) for every CRD document below ``source_dir``."""
    files = sorted(p for p in source_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for doc in yaml.safe_load_all(fh):
                if doc is None:
                    continue
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    raise CrdError(f"{path}: not a CustomResourceDefinition document")
                if doc.get("apiVersion") != "apiextensions.k8s.io/v1":
                    raise CrdError(f"{path}: only apiextensions.k8s.io/v1 CRDs are supported")
                yield path, doc


def generate(crd_dir: Path) -> tuple[dict[Path, str], list[str]]:
    """Build every schema in memory.

    Returns ``(files, problems)``: the output path -> text mapping and a list
    of problems found in the sources (left-over descriptions).
    """
    source_dir = crd_dir / SOURCE_SUBDIR
    files: dict[Path, str] = {}
    problems: list[str] = []
    for path, crd in load_crds(source_dir):
        spec = crd.get("spec") or {}
        group = spec.get("group")
        kind = (spec.get("names") or {}).get("kind")
        if not group or not kind:
            raise CrdError(f"{path}: spec.group and spec.names.kind are required")
        for ver in spec.get("versions") or []:
            if not ver.get("served", False):
                continue
            name = ver.get("name")
            openapi = (ver.get("schema") or {}).get("openAPIV3Schema")
            if not name or not isinstance(openapi, dict):
                raise CrdError(f"{path}: served version {name!r} has no openAPIV3Schema")
            rel = path.relative_to(crd_dir)
            problems.extend(
                f"{rel}: {name}: description left at {where}" for where in find_descriptions(openapi)
            )
            out = crd_dir / group / f"{kind.lower()}_{name}.json"
            if out in files:
                raise CrdError(f"{path}: {group}/{kind} {name} is defined more than once")
            schema = version_schema(group, kind, name, openapi)
            files[out] = json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return files, problems


def existing_outputs(crd_dir: Path) -> set[Path]:
    """Generated-looking JSON files currently on disk."""
    found: set[Path] = set()
    if not crd_dir.is_dir():
        return found
    for sub in crd_dir.iterdir():
        if sub.is_dir() and sub.name not in NON_SCHEMA_SUBDIRS:
            found.update(p for p in sub.glob("*.json") if p.is_file())
    return found


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_CRD_DIR,
        help="schema directory; CRDs are read from DIR/source (default: %(default)s)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 listing files that are missing, differ or are stale",
    )
    args = parser.parse_args(argv)
    crd_dir: Path = args.dir.resolve()

    try:
        files, problems = generate(crd_dir)
    except (CrdError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not files:
        print(f"error: no served CRD versions found under {crd_dir / SOURCE_SUBDIR}", file=sys.stderr)
        return 2

    stale = sorted(existing_outputs(crd_dir) - set(files))

    def show(p: Path) -> str:
        try:
            return str(p.relative_to(Path.cwd()))
        except ValueError:
            return str(p)

    if args.check:
        bad: list[str] = []
        for out, text in sorted(files.items()):
            if not out.is_file():
                bad.append(f"missing: {show(out)}")
            elif out.read_text(encoding="utf-8") != text:
                bad.append(f"differs: {show(out)}")
        bad.extend(f"stale:   {show(p)}" for p in stale)
        bad.extend(f"source:  {msg}" for msg in problems)
        if bad:
            print("CRD schemas are out of date (run: python scripts/crd_schemas.py):")
            for line in bad:
                print(f"  {line}")
            return 1
        print(f"{len(files)} CRD schema files up to date")
        return 0

    for msg in problems:
        print(f"warning: {msg}", file=sys.stderr)
    written = 0
    for out, text in sorted(files.items()):
        if out.is_file() and out.read_text(encoding="utf-8") == text:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        written += 1
        print(f"wrote {show(out)}")
    for p in stale:
        p.unlink()
        print(f"removed stale {show(p)}")
    print(f"{len(files)} schema files, {written} updated, {len(stale)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
