"""A content-addressed cache for the gate: rendered overlays keyed on every file their
kustomization reaches, and policy outcomes keyed on what was judged plus the policies and tools
that judged it. A key that changes simply misses; nothing is ever invalidated by hand."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from vcpl.composition import KUSTOMIZATION_NAMES

# Fields of a kustomization that name files or folders, and kustomization fields of generator entries.
_PATH_FIELDS = ("resources", "components", "bases", "crds", "configurations", "openapi", "transformers", "generators", "validators")


def digest(*parts: Any) -> str:
    material = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def _kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_NAMES if (directory / n).is_file()), None)


def _directory_digest(directory: Path) -> tuple[str, tuple[Path, ...]]:
    """Digest of a kustomization folder's own files (sub-folders that are kustomizations of their
    own are units of their own), and the folders and files it refers to."""
    own = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(directory)
        if any(_kustomization_file(directory.joinpath(*rel.parts[:i])) for i in range(1, len(rel.parts))):
            continue
        own.update(str(rel).encode() + b"\0" + _file_digest(path).encode())
    refs: list[Path] = []
    kfile = _kustomization_file(directory)
    if kfile:
        data = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
        # Every string that resolves to an existing path is an input: resources, components,
        # patch and generator files alike, wherever kustomize lets them live.
        for text in _strings(data):
            if "\n" in text or len(text) > 1024:
                continue
            target = (directory / text).resolve()
            if target != directory and target.exists():
                refs.append(target)
    return own.hexdigest(), tuple(refs)


def inputs_digest(overlay_dir: Path, salt: str, memo: dict[Path, Any] | None = None) -> str:
    """Digest of everything `kustomize build overlay_dir` reads, plus `salt` (the tool's version).
    `memo` shares folder digests between overlays read at the same moment (base, components)."""
    memo = memo if memo is not None else {}
    seen: dict[Path, str] = {}
    stack = [overlay_dir.resolve()]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        if current.is_file():
            seen[current] = _file_digest(current)
            continue
        if current not in memo:
            memo[current] = _directory_digest(current)
        own, refs = memo[current]
        seen[current] = own
        stack.extend(refs)
    return digest(salt, sorted((str(p), d) for p, d in seen.items()))


class Cache:
    """Files under `root`, one per key; writes are atomic so a killed run leaves no half entry."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / key

    def get(self, kind: str, key: str) -> str | None:
        path = self._path(kind, key)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def put(self, kind: str, key: str, text: str) -> None:
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)

    def get_json(self, kind: str, key: str) -> Any:
        text = self.get(kind, key)
        return None if text is None else json.loads(text)

    def put_json(self, kind: str, key: str, value: Any) -> None:
        self.put(kind, key, json.dumps(value, sort_keys=True))


def tree_digest(directory: Path, pattern: str = "*") -> str:
    """Digest of every file below a folder (the policies), by relative path and content."""
    return digest(sorted((str(p.relative_to(directory)), _file_digest(p)) for p in directory.rglob(pattern) if p.is_file()))
