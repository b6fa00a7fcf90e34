"""Literal credentials in one rendered object, found by value as well as by name.

`scan(obj)` returns suspects `{object, field, kind, evidence}` (see README.md, "credentials"):

- pem:          a PEM block whose label holds PRIVATE KEY (RSA, EC, OPENSSH, ENCRYPTED, PGP ... BLOCK).
                Certificates and public keys are not secrets; their bodies are also kept out of the
                entropy check, so a CA bundle in a ConfigMap stays clean.
- token-format: AWS access key ids, GitHub, Slack, Google and Stripe keys, JWTs, bearer/basic
                Authorization values and URLs carrying user:password@.
- assignment:   `key=value`, `key: value`, JSON members and `--flag value` pairs whose key names a
                credential (password, secret, token, api key, passphrase, private key, credential,
                psk) and whose value is a literal, in ConfigMap values, annotations, container
                env values, args and command, ExternalSecret templates; and any Secret with data.
- high-entropy: runs of 20+ base64/base64url characters or 32+ hex digits that look random.
- literal-env:  a literal env value on a variable whose name names a credential.

Where it looks: annotations, ConfigMap data, Secret data, ExternalSecret templates and every
container's env/args/command get every detector; every other string of the object only the PEM
and token-format detectors, which are precise enough to run anywhere.

Thresholds (see `_random_looking`): a base64-ish run must mix upper case, lower case and digits and
reach 80% of the largest entropy a string of its length can have over a 64-letter alphabet,
0.8 * log2(min(len, 64)) bits per character: 3.46 at 20 characters, 4.0 at 32, 4.8 from 64 on.
That tracks the 0.1st percentile of uniformly random strings at every length (measured: 3.52 at 20,
4.08 at 32, 4.84 at 64), so a real key is caught while long identifiers stay below it
(`CiliumEgressGatewayPolicy/fixture-prod-unlabelled`: 4.44 at 49 characters, threshold 4.49).
A fixed 4.0 would miss half of all random 20-character keys (their median is 4.02). Requiring the
three character classes costs 3% of random 20-character keys (no digit by chance) and removes
every lower-case hyphenated name the library renders (`aes256gcm16-prfsha384-ecp384`: 4.09).
Hex needs 32+ digits, a letter and a digit, and more than 3.0 bits (random 32-digit hex: 0.1st
percentile 3.12).

Not credentials here: digests after sha1/sha256/sha384/sha512/md5 with ':' or '-', anything
holding a dot (DNS names, image references, IPs, versions, file names), paths, UUIDs (identifiers:
Grafana and Kubernetes uids, request ids; a UUID-shaped API key under a credential name is still
caught by the assignment and literal-env checks), annotations whose key says hash, digest,
checksum, commit, revision or fingerprint, and values that are references: paths, ${...}, $(...),
$VAR, {{ ... }} templates, secret-store URIs, plain URLs without user:password@, booleans,
numbers, placeholders, names of Kubernetes objects like `venue-credentials`, lists of key names.
"""
from __future__ import annotations

import base64
import binascii
import bisect
import json
import math
import re
from collections import Counter
from functools import lru_cache
from typing import Any, Iterator

MASK = "****"

# Entropy thresholds (module docstring explains the numbers).
MIN_RANDOM_RUN = 20
MIN_HEX_RUN = 32
HEX_MIN_BITS = 3.0
BASE64_FRACTION_OF_MAX = 0.8
# A value full of random runs (an embedded blob, a key list) is one problem, not thousands.
MAX_RANDOM_PER_VALUE = 20

PRIORITY = {"pem": 0, "token-format": 1, "assignment": 2, "literal-env": 3, "high-entropy": 4}

_CRED_WORD = r"password|passwd|pwd|secret|token|api[_-]?key|passphrase|private[_-]?key|credential|psk"
_CRED_HIT = re.compile(_CRED_WORD, re.I)
_CRED_SQUASHED = re.compile(r"password|passwd|pwd|secret|token|apikey|passphrase|privatekey|credential|psk")
_FALSE_FRIENDS = re.compile(r"tokeniz|secretar")
# A key ending like this names where or how a credential is kept, not the credential.
_NOT_THE_VALUE_SUFFIXES = (
    "file", "files", "filename", "path", "paths", "dir", "directory", "folder", "mount", "name", "names",
    "ref", "refs", "reference", "store", "env", "var", "variable", "location", "url", "uri", "endpoint",
    "host", "port", "source", "type", "method", "mode", "policy", "algorithm", "algo", "alg", "encoding",
    "format", "kind", "provider", "length", "len", "size", "bits", "ttl", "timeout", "interval", "expiry",
    "expires", "expiration", "lifetime", "validity", "rotation", "seconds", "secs", "minutes", "hours",
    "days", "ms", "maxage", "count", "retries", "attempts", "enabled", "disabled", "required", "optional",
    "header", "prefix", "audience", "issuer", "scope", "scopes", "keys", "fields", "list", "version",
    "label", "labels", "pattern", "regex", "charset",
)
_NOT_THE_VALUE_PREFIXES = ("max", "min", "num")

_CRED_NEEDLES = (
    "password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "api-key", "passphrase",
    "privatekey", "private_key", "private-key", "credential", "psk",
)
_PREFIX_NEEDLES = (
    "-----begin ", "akia", "asia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "eyj", "aiza",
    "k_live_", "k_test_", "basic", "bearer", "://",
)
_KEY_CHARS = re.compile(r"[\w.\-]*")
_KEY_TAIL = re.compile(r"([\"']?)[ \t]*([:=])(?![=~])[ \t]*")
_LINE_START_PREFIX = re.compile(r"[ \t]*(?:-[ \t]+)?(?:export[ \t]+)?[\"']?")
_COMMENT_PREFIX = ("#", ";", "//", "!")
_INLINE_VALUE = re.compile(r"[^\s;&,'\"<>]{1,4096}")
_BLOCK_INDICATORS = {"|", ">", "|-", ">-", "|+", ">+"}

_PEM_HEADER = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,64})-----")

# (substrings of the lower-cased text that must be present, pattern, evidence). The needles let
# a 1 MB value skip every pattern whose prefix it does not contain; patterns start only at the
# start of a run of their own characters, so no run is rescanned from each of its positions.
_TOKEN_FORMATS: tuple[tuple[tuple[str, ...], re.Pattern[str], Any], ...] = (
    (("akia", "asia"), re.compile(r"(?<![A-Za-z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"), lambda m: m.group(1) + MASK),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), re.compile(r"(?<![A-Za-z0-9_])(gh[pousr]_)[A-Za-z0-9]{30,255}(?![A-Za-z0-9])"),
     lambda m: m.group(1) + MASK),
    (("github_pat_",), re.compile(r"(?<![A-Za-z0-9_])(github_pat_)[A-Za-z0-9_]{20,255}"), lambda m: m.group(1) + MASK),
    (("xox",), re.compile(r"(?<![A-Za-z0-9-])(xox[abprs]-)[A-Za-z0-9-]{10,255}"), lambda m: m.group(1) + MASK),
    (("eyj",), re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,8192}\.[A-Za-z0-9_-]{4,8192}\.[A-Za-z0-9_-]{4,8192}"),
     lambda m: f"JWT eyJ{MASK}"),
    (("aiza",), re.compile(r"(?<![A-Za-z0-9_-])(AIza)[0-9A-Za-z_-]{35}"), lambda m: m.group(1) + MASK),
    (("k_live_", "k_test_"), re.compile(r"(?<![A-Za-z0-9_])([sr]k_(?:live|test)_)[0-9A-Za-z]{16,255}"),
     lambda m: m.group(1) + MASK),
    (("basic",), re.compile(r"(?<![A-Za-z0-9])(Authorization[\"']?[ \t]*[:=][ \t]*[\"']?Basic)[ \t]+[A-Za-z0-9+/]{8,4096}={0,2}", re.I),
     lambda m: f"{m.group(1)} {MASK}"),
)
# Bearer: after "Authorization:" any token; bare "Bearer x" only when x looks like a token, not prose.
_BEARER = re.compile(r"(?<![A-Za-z0-9])(?:(Authorization)[\"']?[ \t]*[:=][ \t]*[\"']?)?(Bearer)[ \t]+([A-Za-z0-9\-._~+/]{8,4096}=*)", re.I)
_SCHEME_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,30}\Z")
_USERINFO = re.compile(r"([^\s/?#@:'\"]{1,256}):([^\s/?#@'\"]{1,256})@([^\s/?#:'\"]{0,256})")
# One pass over the lower-cased text finds every credential word and every token prefix; the
# patterns above then run only when their prefix is there.
_NEEDLES = re.compile(
    r"(?P<cred>" + _CRED_WORD + r")|-----begin |akia|asia|gh[pousr]_|github_pat_|xox|eyj|aiza|k_live_|k_test_|basic|bearer|://"
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_RUN = re.compile(r"(?<![A-Za-z0-9+/_.\-])[A-Za-z0-9+/_.\-]{20,}={0,2}")
_DIGIT = re.compile(r"[0-9]")
_DIGEST_BEFORE = re.compile(r"(?:sha1|sha224|sha256|sha384|sha512|md5)[:\-]\Z", re.I)
_DIGEST_PREFIX = re.compile(r"(?:sha1|sha224|sha256|sha384|sha512|md5)[:\-]", re.I)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_HEX = re.compile(r"[0-9a-fA-F]+\Z")
_WORDY_SEGMENT = re.compile(r"[a-z][a-z0-9_\-]*\Z")
# "vcpl.dev/config-hash", Helm's "checksum/config": digests by name, random by design.
_HASHY_ANNOTATION = re.compile(r"(?:^|[-_./])(?:hash|digest|checksum|commit|revision|fingerprint|sha\d*|uid)(?:$|[-_./])", re.I)

_TEMPLATE = re.compile(r"\$\{|\$\(|\{\{|%\{|#\{|<%")
_SHELL_VAR = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*\Z")
_STORE_REF = re.compile(
    r"(?:vault:|ref\+[a-z0-9]+://|arn:aws[\w-]*:(?:secretsmanager|ssm|kms):|awssm:|aws-sm:|ssm:|gcpsm:|gsm:|"
    r"sm://|projects/[^/\s]+/secrets/|azure-?kv:|akv:|keyvault:|op://|sops:|secretref:|k8s-?secret:|env:|file:)",
    re.I,
)
_WINDOWS_PATH = re.compile(r"[A-Za-z]:\\")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^\s@]*\Z")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")
_PLACEHOLDER = re.compile(r"(?:\*{3,}|x{3,}|X{3,}|<[^<>]{0,64}>|redacted|\[redacted\])\Z", re.I)
_BENIGN_WORDS = {
    "true", "false", "yes", "no", "y", "n", "on", "off", "null", "none", "nil", "~", "-", "''", '""',
    "disabled", "enabled", "required", "optional", "auto", "default",
}
_SECRET_OBJECT_KEY = re.compile(r"(?:secrets?|credentials?)\W*\Z", re.I)
_OBJECT_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+\Z")
_LIST_SPLIT = re.compile(r"[,;\s]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FLAG = re.compile(r"--?([A-Za-z][\w.\-]*)\Z")

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def scan(obj: dict) -> list[dict]:
    """Suspected literal credentials in one rendered object, in document order."""
    if not isinstance(obj, dict):
        return []
    kind = str(obj.get("kind") or "")
    found_metadata = obj.get("metadata")
    metadata = found_metadata if isinstance(found_metadata, dict) else {}
    scanner = _Scanner(f"{kind}/{metadata.get('name', '')}")
    skip: set[str] = set()
    if kind == "ConfigMap":
        skip |= {"data", "binaryData"}
        for key, value in _items(obj.get("data")):
            scanner.config_value(key, value, f"data[{key}]")
        for key, value in _items(obj.get("binaryData")):
            scanner.binary_value(value, f"binaryData[{key}]")
    elif kind == "Secret":
        skip |= {"data", "stringData"}
        for section in ("data", "stringData"):
            for key, value in _items(obj.get(section)):
                if value not in (None, ""):
                    scanner.add("assignment", f"{section}[{key}]", f"{key}={MASK}")
    elif kind == "ExternalSecret":
        template = _dig(obj, "spec", "target", "template")
        if isinstance(template, dict):
            skip.add("spec.target.template.data")
            for key, value in _items(template.get("data")):
                scanner.config_value(key, value, f"spec.target.template.data[{key}]")
            for i, source in enumerate(template.get("templateFrom") or []):
                if isinstance(source, dict) and isinstance(source.get("literal"), str):
                    field = f"spec.target.template.templateFrom[{i}].literal"
                    skip.add(field)
                    scanner.text(source["literal"], field, numbered=True)
    scanner.walk(obj, "", skip)
    return scanner.results()


class _Scanner:
    def __init__(self, object_id: str) -> None:
        self.object_id = object_id
        self.found: list[dict] = []
        self.fields: set[str] = set()

    def add(self, kind: str, field: str, evidence: str) -> None:
        self.found.append({"object": self.object_id, "field": field, "kind": kind, "evidence": evidence})
        self.fields.add(field)

    def results(self) -> list[dict]:
        seen: set[tuple[str, str, str]] = set()
        unique = []
        for suspect in self.found:
            key = (suspect["field"], suspect["kind"], suspect["evidence"])
            if key not in seen:
                seen.add(key)
                unique.append(suspect)
        return unique

    # -- the object tree ------------------------------------------------------------------------

    def walk(self, node: Any, path: str, skip: set[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                child = _join(path, key)
                if child in skip:
                    continue
                if key == "annotations" and isinstance(value, dict) and (path == "metadata" or path.endswith(".metadata")):
                    for name, text in value.items():
                        self.annotation(str(name), text, f"{child}[{name}]")
                elif key in _CONTAINER_LISTS and isinstance(value, list):
                    for i, container in enumerate(value):
                        self.container(container, f"{child}[{i}]", skip)
                else:
                    self.walk(value, child, skip)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self.walk(value, f"{path}[{i}]", skip)
        elif isinstance(node, str):
            self.text(node, path, assignments=False, entropy=False)

    def annotation(self, name: str, value: Any, field: str) -> None:
        if not isinstance(value, str):
            return
        short = name.rsplit("/", 1)[-1]
        entropy = not _HASHY_ANNOTATION.search(name)
        if not (_looks_structured(value) and self.json_value(value, field, entropy=entropy)):
            self.text(value, field, entropy=entropy)
        if field not in self.fields and "\n" not in value.strip() and _is_credential_name(short) and not _is_reference_or_benign(value, short):
            self.add("assignment", field, f"{name}={MASK}")

    def container(self, container: Any, path: str, skip: set[str]) -> None:
        if not isinstance(container, dict):
            self.walk(container, path, skip)
            return
        for key, value in container.items():
            child = _join(path, key)
            if key == "env" and isinstance(value, list):
                for i, var in enumerate(value):
                    self.env_var(var, f"{child}[{i}]", skip)
            elif key in ("args", "command") and isinstance(value, list):
                self.arguments(value, child)
            else:
                self.walk(value, child, skip)

    def env_var(self, var: Any, path: str, skip: set[str]) -> None:
        if not isinstance(var, dict):
            self.walk(var, path, skip)
            return
        for key, value in var.items():
            if key != "value":
                self.walk(value, _join(path, key), skip)
        value = var.get("value")
        if not isinstance(value, str) or value == "":
            return
        field = f"{path}.value"
        self.text(value, field)
        name = str(var.get("name") or "")
        if field not in self.fields and _is_credential_name(name) and not _is_reference_or_benign(value, name):
            self.add("literal-env", field, f"{name}={MASK}")

    def arguments(self, items: list, path: str) -> None:
        for i, item in enumerate(items):
            field = f"{path}[{i}]"
            if not isinstance(item, str):
                self.walk(item, field, set())
                continue
            self.text(item, field)
            flag = _FLAG.match(item)
            if flag and _is_credential_name(flag.group(1)) and i + 1 < len(items):
                nxt = items[i + 1]
                target = f"{path}[{i + 1}]"
                if isinstance(nxt, str) and not nxt.startswith("-") and not _is_reference_or_benign(nxt, flag.group(1)) and target not in self.fields:
                    self.add("assignment", target, f"{item} {MASK}")

    # -- values holding configuration text ------------------------------------------------------

    def config_value(self, key: str, value: Any, field: str) -> None:
        if not isinstance(value, str):
            self.walk(value, field, set())
            return
        if not (_looks_structured(value) and self.json_value(value, field, entropy=True)):
            self.text(value, field, numbered=True)
        # A ConfigMap key named like a credential whose whole value is one literal: a mounted secret file.
        stem = key.rsplit(".", 1)[0] if "." in key else key
        single = value.strip()
        if field not in self.fields and single and "\n" not in single and _is_credential_name(stem) and not _is_reference_or_benign(single, stem):
            self.add("assignment", field, f"{key}={MASK}")

    def json_value(self, value: str, field: str, *, entropy: bool) -> bool:
        try:
            document = json.loads(value)
        except (ValueError, RecursionError):
            return False
        if not isinstance(document, (dict, list)):
            return False
        try:
            self.json_node(document, field, None, entropy)
        except RecursionError:
            return False  # nested deeper than the walk can follow: read it as text instead
        return True

    def json_node(self, node: Any, path: str, credential_key: str | None, entropy: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                key = str(key)
                self.json_node(value, _join(path, key), key if _is_credential_name(key) else None, entropy)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self.json_node(value, f"{path}[{i}]", credential_key, entropy)
        elif isinstance(node, str):
            self.text(node, path, entropy=entropy)
            if credential_key and path not in self.fields and not _is_reference_or_benign(node, credential_key):
                self.add("assignment", path, f"{credential_key}={MASK}")

    def binary_value(self, value: Any, field: str) -> None:
        # Binary content is random by nature: only the exact formats are meaningful in it.
        if not isinstance(value, str):
            return
        try:
            raw = base64.b64decode(value, validate=False)
        except (binascii.Error, ValueError):
            return
        self.text(raw.decode("latin-1"), field, numbered=False, assignments=False, entropy=False)

    # -- free text -----------------------------------------------------------------------------

    def text(self, text: str, field: str, *, numbered: bool | None = None, assignments: bool = True, entropy: bool = True) -> None:
        """Every detector over one string; `numbered`: name the line (None: only when it has several)."""
        if not text:
            return
        low = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)  # same offsets as text
        present, cred_hits = _needles(low)
        if not present and not (cred_hits and assignments) and (not entropy or len(text) < MIN_RANDOM_RUN):
            return
        hits: list[tuple[int, int, str, int, str]] = []  # (start, end, kind, anchor, evidence)
        quiet: list[tuple[int, int]] = []  # public PEM blocks: not secrets, and not random text either
        if present:
            if "-----begin " in present:
                for start, end, label in _pem_blocks(text):
                    if "PRIVATE KEY" in label:
                        hits.append((start, end, "pem", start, f"-----BEGIN {label}-----{MASK}"))
                    else:
                        quiet.append((start, end))
            for needles, pattern, evidence in _TOKEN_FORMATS:
                if not present.isdisjoint(needles):
                    for m in pattern.finditer(text):
                        hits.append((m.start(), m.end(), "token-format", m.start(), evidence(m)))
            if "bearer" in present:
                for m in _BEARER.finditer(text):
                    token = m.group(3)
                    if m.group(1) or (len(token) >= 16 and _DIGIT.search(token) and token.upper() != token.lower()):
                        label = f"{m.group(1)}: {m.group(2)}" if m.group(1) else m.group(2)
                        hits.append((m.start(3), m.end(3), "token-format", m.start(), f"{label} {MASK}"))
            if "://" in present:
                hits.extend(_url_passwords(text))
        if assignments and cred_hits:
            hits.extend(_assignments(text, cred_hits))
        taken = _Intervals(quiet)
        accepted: list[tuple[int, str, str]] = []
        for start, end, kind, anchor, evidence in sorted(hits, key=lambda h: (PRIORITY[h[2]], h[0])):
            if taken.overlaps(start, end):
                continue
            taken.add(start, end)
            accepted.append((anchor, kind, evidence))
        if entropy and len(text) >= MIN_RANDOM_RUN:
            listed = 0
            for start, end, evidence in _random_runs(text):
                if not taken.overlaps(start, end):
                    accepted.append((start, "high-entropy", evidence))
                    listed += 1
                    if listed == MAX_RANDOM_PER_VALUE:
                        break
        if not accepted:
            return
        lines = _LineIndex(text) if numbered or (numbered is None and "\n" in text) else None
        for anchor, kind, evidence in sorted(accepted, key=lambda a: a[0]):
            self.add(kind, f"{field} line {lines.line(anchor)}" if lines else field, evidence)


def _needles(low: str) -> tuple[set[str], list[int]]:
    """Token prefixes present in `low`, and the offsets of credential words."""
    present: set[str] = set()
    cred_hits: list[int] = []
    if len(low) <= 4096:  # one regex call beats thirty substring searches on short strings
        if not _NEEDLES.search(low):
            return present, cred_hits
        for m in _NEEDLES.finditer(low):
            if m.lastgroup == "cred":
                cred_hits.append(m.start())
            else:
                present.add(m.group())
        return present, cred_hits
    present = {needle for needle in _PREFIX_NEEDLES if needle in low}  # C substring search: ~2 ms/MB each
    for needle in _CRED_NEEDLES:
        i = low.find(needle)
        while i >= 0:
            cred_hits.append(i)
            i = low.find(needle, i + 1)
    cred_hits.sort()
    return present, cred_hits


# -- detectors over text --------------------------------------------------------------------------


def _pem_blocks(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _PEM_HEADER.finditer(text):
        label = m.group(1)
        end_marker = f"-----END {label}-----"
        end = text.find(end_marker, m.end())
        yield m.start(), (end + len(end_marker) if end >= 0 else len(text)), label


def _url_passwords(text: str) -> Iterator[tuple[int, int, str, int, str]]:
    start = text.find("://")
    while start >= 0:
        scheme = _SCHEME_BEFORE.search(text, max(0, start - 31), start)
        m = _USERINFO.match(text, start + 3) if scheme else None
        if scheme and m and not _is_reference_or_benign(m.group(2)):
            evidence = f"{scheme.group()}://{m.group(1)}:{MASK}@{m.group(3)}"
            yield m.start(2), m.end(2), "token-format", scheme.start(), evidence
        start = text.find("://", start + 3)


def _match_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a run of `pattern` starting at `pos` ends (`pos` itself when there is none)."""
    m = pattern.match(text, pos)
    return m.end() if m else pos


def _assignments(text: str, found: list[int]) -> Iterator[tuple[int, int, str, int, str]]:
    """`key=value` / `key: value` whose key names a credential, from the offsets of credential words."""
    done = 0
    for hit in found:
        if hit < done:
            continue
        key_end = _match_end(_KEY_CHARS, text, hit)
        done = key_end
        tail = _KEY_TAIL.match(text, key_end)
        if not tail:
            continue
        reach = _match_end(_KEY_CHARS, text[max(0, hit - 129):hit][::-1], 0)
        if reach > 128:
            continue  # a key longer than anyone writes: not a key
        key_start = hit - reach
        key = text[key_start:key_end].lstrip("-")
        if not key or not _is_credential_name(key):
            continue
        line_start = text.rfind("\n", max(0, key_start - 256), key_start) + 1
        known_line = line_start > 0 or key_start <= 256
        prefix = text[line_start:key_start] if known_line else None
        if prefix is not None and prefix.lstrip().startswith(_COMMENT_PREFIX):
            continue  # prose in comments names credentials without holding one
        at_line_start = prefix is not None and _LINE_START_PREFIX.fullmatch(prefix) is not None
        quoted_key = bool(tail.group(1)) and key_start > 0 and text[key_start - 1] == tail.group(1)
        if tail.group(2) == ":" and not (at_line_start or quoted_key):
            continue  # "the token: ..." in a sentence, or a URL
        value_start = tail.end()
        span = _value_span(text, value_start, at_line_start)
        if span is None:
            continue
        start, end = span
        value = text[start:end]
        if tail.group(2) == ":" and at_line_start and value in _BLOCK_INDICATORS:
            span = _next_line_span(text, end)
            if span is None:
                continue
            start, end = span
            value = text[start:end]
        if not value or _is_reference_or_benign(value, key):
            continue
        yield start, end, "assignment", key_start, f"{key}={MASK}"


def _value_span(text: str, start: int, whole_line: bool) -> tuple[int, int] | None:
    if start >= len(text):
        return None
    quote = text[start]
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    if quote in "\"'":
        close = text.find(quote, start + 1, min(line_end, start + 4097))
        return (start + 1, close) if close >= 0 else (start + 1, line_end)
    if whole_line:
        end = line_end
        comment = text.find(" #", start, end)
        if comment >= 0:
            end = comment
        while end > start and text[end - 1] in " \t\r,":
            end -= 1
        return start, end
    m = _INLINE_VALUE.match(text, start)
    if not m:
        return None
    end = m.end()
    while end > start and text[end - 1] in ")]}":
        end -= 1  # "f(password=x)": the bracket closes the call, the value is x
    return start, end


def _next_line_span(text: str, pos: int) -> tuple[int, int] | None:
    while pos < len(text):
        nl = text.find("\n", pos)
        if nl < 0:
            return None
        pos = nl + 1
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end]
        if line.strip():
            lead = len(line) - len(line.lstrip())
            return pos + lead, pos + len(line.rstrip())
        pos = end
    return None


def _random_runs(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _RUN.finditer(text):
        run = m.group().rstrip("=").rstrip(".")
        if "." in run or run[0] == "/" or len(run) < MIN_RANDOM_RUN:
            continue
        if run.lower() == run and len(run) < MIN_HEX_RUN:
            continue  # neither hex long enough nor mixed-case base64: the common case, decided cheaply
        if _DIGEST_PREFIX.match(run) or _DIGEST_BEFORE.search(text, max(0, m.start() - 8), m.start()):
            continue
        if _UUID.match(run) or _path_like(run):
            continue
        verdict = _random_looking(run)
        if verdict:
            yield m.start(), m.start() + len(run), verdict


def _random_looking(run: str) -> str | None:
    """Evidence when `run` looks like key material, else None (thresholds: module docstring)."""
    n = len(run)
    if _HEX.match(run):
        if n < MIN_HEX_RUN or run.isdigit() or not _DIGIT.search(run):
            return None
        bits = _entropy(run)
        return f"{MASK} ({n} hex chars, {bits:.1f} bits/char)" if bits > HEX_MIN_BITS else None
    if run.lower() == run or run.upper() == run or not _DIGIT.search(run):
        return None  # random key material mixes upper case, lower case and digits
    bits = _entropy(run)
    if bits <= BASE64_FRACTION_OF_MAX * math.log2(min(n, 64)):
        return None
    return f"{MASK} ({n} base64 chars, {bits:.1f} bits/char)"


_C_LOG_C = [0.0] + [c * math.log2(c) for c in range(1, 4097)]


def _entropy(s: str) -> float:
    n = len(s)
    table = _C_LOG_C
    total = sum(table[c] if c <= 4096 else c * math.log2(c) for c in Counter(s).values())
    return math.log2(n) - total / n


def _path_like(run: str) -> bool:
    # "trade-api/ws/v2": several '/'-separated lower-case words are a path, not base64.
    if "/" not in run:
        return False
    segments = run.split("/")
    wordy = sum(1 for s in segments if len(s) >= 2 and _WORDY_SEGMENT.match(s))
    return len(segments) >= 3 and wordy >= 2 and 2 * wordy >= len(segments)


# -- names and values -----------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _is_credential_name(name: str) -> bool:
    squashed = re.sub(r"[^a-z0-9]", "", name.lower())
    squashed = _FALSE_FRIENDS.sub("", squashed).rstrip("0123456789")
    if not _CRED_SQUASHED.search(squashed):
        return False
    if squashed.endswith(("apikeys", "privatekeys")):
        return True  # the keys themselves, unlike "secretKeys" (names of keys)
    return not (squashed.endswith(_NOT_THE_VALUE_SUFFIXES) or squashed.startswith(_NOT_THE_VALUE_PREFIXES))


def _is_reference_or_benign(value: str, key: str = "") -> bool:
    v = value.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        v = v[1:-1].strip()
    if not v:
        return True
    if v.lower() in _BENIGN_WORDS or _NUMBER.match(v):
        return True
    if v.startswith(("/", "./", "../", "~/")) or _WINDOWS_PATH.match(v):
        return True
    if _TEMPLATE.search(v) or _SHELL_VAR.match(v) or _STORE_REF.match(v) or _URL.match(v) or _PLACEHOLDER.match(v):
        return True
    if _OBJECT_NAME.match(v) and _CRED_HIT.search(v) and _SECRET_OBJECT_KEY.search(key):
        return True  # credentialsSecret: venue-credentials names the Secret holding it
    if (" " in v or "," in v or ";" in v) and _is_key_name_list(v):
        return True  # "password,token,api_key": a list of key names (redaction, allow-lists)
    return False


def _is_key_name_list(v: str) -> bool:
    items = [item for item in _LIST_SPLIT.split(v) if item]
    return len(items) >= 2 and all(_IDENT.match(item.replace("-", "_")) and _CRED_HIT.search(item) for item in items)


# -- helpers --------------------------------------------------------------------------------------


class _Intervals:
    """Non-overlapping spans already claimed by a stronger finding."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for start, end in sorted(spans):
            self.add(start, end)

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self.starts, start)
        if i > 0 and self.ends[i - 1] > start:
            return True
        return i < len(self.starts) and self.starts[i] < end

    def add(self, start: int, end: int) -> None:
        i = bisect.bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)


class _LineIndex:
    def __init__(self, text: str) -> None:
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1


def _looks_structured(value: str) -> bool:
    head = value.lstrip()[:1]
    return head in ("{", "[")


def _items(section: Any) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in section.items()] if isinstance(section, dict) else []


def _dig(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _join(path: str, key: Any) -> str:
    key = str(key)
    if _IDENT.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"
