"""A private, writable copy of what rendering needs, mutated and restored once per case.

Each worker process owns one copy: a mutation edits files in it, the gate renders from it, and
`restore` puts back every file the mutation touched. The copy is made of real files, never links,
so no edit can ever reach the repository.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from vcpl import yamlio

# What `kustomize build overlays/<env>/<venue>` and the gate read from a repository root.
RENDER_INPUTS = ("base", "components", "venues", "overlays", "platform")

dump_yaml = yamlio.dump


class Tree:
    def __init__(self, source: Path, root: Path) -> None:
        self.source = source
        self.root = root
        # relative path -> original bytes, or None when the mutation created the file
        self._saved: dict[str, bytes | None] = {}
        self._made_dirs: list[Path] = []

    @classmethod
    def copy_of(cls, source: Path, root: Path) -> Tree:
        root.mkdir(parents=True, exist_ok=True)
        for name in RENDER_INPUTS:
            shutil.copytree(source / name, root / name, symlinks=False,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return cls(source, root)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def read_yaml(self, rel: str) -> object:
        return yaml.load(self.read(rel), Loader=yamlio.SafeLoader)

    def _remember(self, rel: str) -> None:
        if rel in self._saved:
            return
        target = self.root / rel
        self._saved[rel] = target.read_bytes() if target.exists() else None
        missing = []
        parent = target.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            directory.mkdir()
            self._made_dirs.append(directory)

    def write(self, rel: str, text: str) -> None:
        self._remember(rel)
        (self.root / rel).write_text(text, encoding="utf-8")

    def write_yaml(self, rel: str, data: object) -> None:
        self.write(rel, dump_yaml(data))

    def remove(self, rel: str) -> None:
        self._remember(rel)
        (self.root / rel).unlink()

    def original(self, rel: str) -> bytes | None:
        """The file as it was before the mutation (None when it did not exist)."""
        if rel in self._saved:
            return self._saved[rel]
        target = self.root / rel
        return target.read_bytes() if target.exists() else None

    def changed(self) -> list[str]:
        """Files whose content differs from before the mutation (rewriting the same bytes is no change)."""
        found = []
        for rel, before in self._saved.items():
            target = self.root / rel
            after = target.read_bytes() if target.exists() else None
            if after != before:
                found.append(rel)
        return sorted(found)

    def restore(self) -> None:
        for rel, original in self._saved.items():
            target = self.root / rel
            if original is None:
                target.unlink(missing_ok=True)
            else:
                target.write_bytes(original)
        for directory in reversed(self._made_dirs):
            shutil.rmtree(directory, ignore_errors=True)
        self._saved.clear()
        self._made_dirs.clear()
