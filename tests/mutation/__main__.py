"""`python -m tests.mutation` from the repository root (or `make mutation-table`).

    --write        regenerate policies/MUTATIONS.md
    --check        exit 1 when policies/MUTATIONS.md is out of date
    --only A,B     run only these operators (prints outcomes; never writes the table)
    -v             print every mutant that was not caught, with its evidence
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from . import harness, table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description="the mutation suite: dangerous changes the gate must catch")
    parser.add_argument("--write", action="store_true", help="regenerate policies/MUTATIONS.md")
    parser.add_argument("--check", action="store_true", help="fail when policies/MUTATIONS.md is out of date")
    parser.add_argument("--only", default="", help="comma-separated operator ids")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    only = [o for o in args.only.split(",") if o]
    report = harness.run(only=only or None)
    print(harness.summary(report))
    if args.verbose or only:
        for outcome in report.outcomes:
            if outcome.verdict not in ("caught", "tooling") or only:
                print(f"{outcome.verdict:10} {outcome.mutant.id}\n           {outcome.evidence.splitlines()[0] if outcome.evidence else ''}")
    if only:
        return 0
    text = table.render(report)
    if args.write:
        table.TABLE.write_text(text, encoding="utf-8")
        print(f"wrote {table.TABLE.relative_to(ROOT)}")
    if args.check and (not table.TABLE.exists() or table.TABLE.read_text(encoding="utf-8") != text):
        print(f"{table.TABLE.relative_to(ROOT)} is out of date: run `make mutation-table`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
