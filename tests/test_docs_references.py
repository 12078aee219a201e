"""The tests the docs name as evidence exist: every ``tests/FILE.py::test_name`` in README.md and docs/.

A table row of docs/architecture.md says "shown by `tests/….py::test_…`"; ``…::name`` repeats the
last file named before it in the same document. A renamed or removed test makes this fail, so a
claim never points at evidence that is gone.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"(tests/[\w/]+\.py|…)::(\w+)")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test")}


def references(text: str) -> list[tuple[str, str]]:
    """(file, test) for each reference, ``…`` resolved to the last file named before it."""
    found, last = [], ""
    for match in REFERENCE.finditer(text):
        file = last if match[1] == "…" else match[1]
        last = file
        found.append((file, match[2]))
    return found


def test_every_test_the_docs_name_exists() -> None:
    missing = []
    checked = 0
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for file, name in references(doc.read_text()):
            checked += 1
            path = ROOT / file
            if not file or not path.is_file() or name not in _tests_in(path):
                missing.append(f"{doc.relative_to(ROOT)}: {file or '…'}::{name}")
    assert checked >= 8  # the check reads the references at all
    assert missing == []


def test_an_ellipsis_names_the_file_before_it() -> None:
    text = "`tests/a/test_x.py::test_one` then `…::test_two`; `tests/b.py::test_three`, `…::test_four`"
    assert references(text) == [
        ("tests/a/test_x.py", "test_one"),
        ("tests/a/test_x.py", "test_two"),
        ("tests/b.py", "test_three"),
        ("tests/b.py", "test_four"),
    ]


def test_every_test_file_the_docs_name_exists() -> None:
    named = {
        (doc.relative_to(ROOT), path)
        for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for path in re.findall(r"tests/[\w/]+\.py", doc.read_text())
    }
    assert len(named) >= 10
    assert [f"{doc}: {path}" for doc, path in sorted(named) if not (ROOT / path).is_file()] == []
