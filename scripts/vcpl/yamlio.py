"""YAML in and out. Output is deterministic: sorted keys are not used, literal blocks for
multi-line text. Input from people (run books) goes through `read_text` and `load_strict`,
which refuse what PyYAML would silently accept or choke on, each with a line or field path."""
from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from vcpl.errors import InputError


class _Dumper(yaml.SafeDumper):
    # Run books refuse anchors and aliases, so nothing written here uses them: a value that
    # occurs twice is written out twice.
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


class Flow(dict):  # type: ignore[type-arg]
    """A mapping written on one line ({host: ..., port: ...}), as people write small facts."""


def _flow(dumper: yaml.SafeDumper, value: Flow) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=True)


_Dumper.add_representer(Flow, _flow)


def dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096)


def dump_all(objs: Iterable[Any]) -> str:
    return yaml.dump_all(list(objs), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096)


# libyaml's loader where PyYAML was built with it: rendered overlays are large.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=SafeLoader) if doc]


# ---------------------------------------------------------------------------------------------
# Strict input


@dataclass(frozen=True)
class Limits:
    """Bounds on a hand-written YAML file, so a hostile or broken one fails fast and clearly."""

    max_bytes: int
    max_depth: int
    max_nodes: int


# UTF-32 first: its little-endian mark starts with the UTF-16 one.
_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)
_UTF8_BOM = b"\xef\xbb\xbf"
# The characters YAML 1.1 allows in a stream (the same set PyYAML's reader enforces).
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _at(line: int, column: int) -> str:
    return f"line {line}, column {column}"


def _byte_position(raw: bytes, offset: int) -> str:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return _at(raw.count(b"\n", 0, offset) + 1, offset - line_start + 1)


def _char_position(text: str, offset: int) -> str:
    line_start = text.rfind("\n", 0, offset) + 1
    return _at(text.count("\n", 0, offset) + 1, offset - line_start + 1)


def read_text(path: Path, limits: Limits) -> str:
    """Read a UTF-8 text file of at most `limits.max_bytes`.

    Raises OSError when the file cannot be opened (the caller knows what the file should be),
    InputError when it is not something a YAML parser should see.
    """
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise InputError([f"(file): is {kind}; expected a YAML text file"])
    if info.st_size > limits.max_bytes:
        raise InputError([_too_big(info.st_size, limits.max_bytes)])
    with path.open("rb") as handle:
        # Bounded read: the file may have grown since stat.
        raw = handle.read(limits.max_bytes + 1)
    if len(raw) > limits.max_bytes:
        raise InputError([_too_big(len(raw), limits.max_bytes)])
    return decode(raw)


def _too_big(size: int, limit: int) -> str:
    return f"(file size): {size} bytes is over the limit; expected at most {limit} bytes ({limit // 1024} KiB)"


def decode(raw: bytes) -> str:
    """UTF-8 text without NUL or control characters; a UTF-8 byte-order mark is dropped."""
    for bom, name in _FOREIGN_BOMS:
        if raw.startswith(bom):
            raise InputError([f"{_at(1, 1)}: the file is encoded as {name} (byte-order mark); expected UTF-8 text"])
    if raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM):]
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InputError([f"{_byte_position(raw, nul)}: NUL byte, so this is a binary file; expected UTF-8 YAML text"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError([f"{_byte_position(raw, exc.start)}: byte 0x{raw[exc.start]:02x} is not valid UTF-8; expected UTF-8 YAML text"]) from None
    bad = _NOT_PRINTABLE.search(text)
    if bad:
        raise InputError([f"{_char_position(text, bad.start())}: control character U+{ord(bad.group()):04X}; expected printable text"])
    return text


def load_strict(text: str, limits: Limits) -> Any:
    """Parse one YAML document, refusing duplicate keys, merge keys, aliases, deep nesting and
    more than `limits.max_nodes` nodes. Every problem names a field path and a line."""
    loader = _StrictLoader(text, limits)
    try:
        node = loader.get_single_node()
        if loader.problems:
            # An inner mapping is finished before its parent: report in file order instead.
            raise InputError([problem for _, problem in sorted(loader.problems)])
        return None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise InputError([_describe_yaml_error(exc)]) from None
    except yaml.YAMLError as exc:
        raise InputError([f"(YAML): {str(exc).splitlines()[0]}; expected valid YAML"]) from None
    finally:
        loader.dispose()


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = _at(mark.line + 1, mark.column + 1) if mark else "(YAML)"
    problem = exc.problem or exc.context or "not valid YAML"
    context = ""
    if exc.context and exc.problem:
        context = f" ({exc.context}"
        if exc.context_mark and exc.context_mark is not mark:
            context += f" at line {exc.context_mark.line + 1}"
        context += ")"
    return f"{where}: {problem}{context}; expected valid YAML"


_MERGE_TAG = "tag:yaml.org,2002:merge"
# (parent node, index) of each node being composed: index is a key node for a mapping value,
# an int for a list item, None for the root or a mapping key.
_Frame = tuple[Node | None, Node | int | None]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that checks while composing, before anything is constructed.

    Checking at composition time matters: an alias bomb only explodes during construction,
    and nesting is only recursive there, so both are stopped before they cost anything.
    """

    def __init__(self, text: str, limits: Limits) -> None:
        super().__init__(text)
        self.limits = limits
        self.problems: list[tuple[int, str]] = []  # (line, problem), collected while composing
        self._frames: list[_Frame] = []
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Node | int | None) -> Node:  # type: ignore[override]
        self._frames.append((parent, index))
        try:
            self._check_before_composing()
            return super().compose_node(parent, index)  # type: ignore[arg-type, return-value]
        finally:
            self._frames.pop()

    def _check_before_composing(self) -> None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise InputError([f"{self._where(event.start_mark)}: YAML alias '*{event.anchor}'; expected the value written out (run books do not use anchors and aliases)"])
        if len(self._frames) > self.limits.max_depth:
            raise InputError([f"{self._where(event.start_mark)}: nested more than {self.limits.max_depth} levels deep; expected a shallower document"])
        self._nodes += 1
        if self._nodes > self.limits.max_nodes:
            raise InputError([f"{self._where(event.start_mark)}: more than {self.limits.max_nodes} YAML nodes; expected a smaller document"])

    def compose_mapping_node(self, anchor: Any) -> MappingNode:  # type: ignore[override]
        node = super().compose_mapping_node(anchor)
        self._check_keys(node)
        return node

    def _check_keys(self, node: MappingNode) -> None:
        seen: dict[Any, int] = {}
        base = self.field_path(node)
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                self.problems.append((line, f"{base or '(top level)'}: YAML merge key '<<' on line {line}; expected the fields written out"))
                continue
            if not isinstance(key_node, ScalarNode):
                continue  # construction refuses unhashable keys with its own message
            key = self.construct_object(key_node)
            field = f"{base}.{key}" if base else str(key)
            if key in seen:
                self.problems.append((line, (
                    f"{field}: key '{key}' appears twice, on lines {seen[key]} and {line}; "
                    "expected each key once (YAML would silently keep only the last)"
                )))
            else:
                seen[key] = line

    def _where(self, mark: Any) -> str:
        field = self.field_path(None)
        position = _at(mark.line + 1, mark.column + 1) if mark is not None else "end of file"
        return f"{field} ({position})" if field else position

    def field_path(self, innermost: Node | None) -> str:
        """The dotted path of the node being composed, in the style runbook.field_path uses."""
        out = ""
        for depth, (_, index) in enumerate(self._frames):
            if isinstance(index, ScalarNode):
                out += ("." if out else "") + str(index.value)
            elif isinstance(index, Node):
                out += ("." if out else "") + "(key)"
            elif isinstance(index, int):
                # The item's node is the parent of the next frame, or the innermost node.
                item = self._frames[depth + 1][0] if depth + 1 < len(self._frames) else innermost
                out += f"[{index}]" + _name_suffix(item)
        return out


def _name_suffix(node: Node | None) -> str:
    """`(ilink3)` for a list item with a `name`, which helps find it in a long list."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == "name" and isinstance(value, ScalarNode) and value.value:
                return f"({value.value})"
    return ""
