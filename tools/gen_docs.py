#!/usr/bin/env python3
"""Regenerate the component reference in README.md from the component schemas.

    python3 tools/gen_docs.py          # rewrite README.md between the components markers
    python3 tools/gen_docs.py --check  # exit 1 when README.md is out of date (the tests use it)
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- components:begin -->", "<!-- components:end -->"


def reference() -> str:
    from edgesnn.components import KINDS, available

    out = ["### Components", ""]
    for kind in KINDS:
        types = available(kind)
        if not types:
            continue
        out.append(f"#### {kind.capitalize()}s")
        out.append("")
        for name, cls in types.items():
            summary = cls.summary or (cls.__doc__ or "").strip().splitlines()[0]
            out.append(f"**`{name}`** — {summary}")
            out.append("")
            rows = cls.schema.describe()
            if rows:
                out.append("| key | type | default | meaning |")
                out.append("|---|---|---|---|")
                for key, typ, default, doc in rows:
                    doc = doc.replace("|", "\\|").replace("\n", " ")
                    default = default.replace("|", "\\|")
                    out.append(f"| `{key}` | {typ} | `{default}` | {doc} |")
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def render(readme: str) -> str:
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{reference()}{END}{tail}"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(REPO))
    path = REPO / "README.md"
    text = path.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in argv:
        if new != text:
            print("README.md component reference is out of date: run python3 tools/gen_docs.py")
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
