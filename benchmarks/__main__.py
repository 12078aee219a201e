"""``python -m benchmarks`` (``make bench``): run every benchmark module of this folder in turn.

A benchmark module is any ``benchmarks/*.py`` not starting with ``_`` that has a ``main()``
(or ``main(argv)``, given no arguments); each runs with its defaults. ``--only NAME`` runs
the named ones.

With ``--record``, what a module printed (its environment header, progress and tables; not
its JSON line) replaces the block between these two lines of docs/benchmarks.md:

    <!-- output: benchmarks.NAME -->
    <!-- /output: benchmarks.NAME -->

so every figure there is the verbatim output of the command its section names. A module
whose markers are absent is run but recorded nowhere.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import io
import pkgutil
import re
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import TextIO

FOLDER = Path(__file__).parent
DOC = FOLDER.parent / "docs" / "benchmarks.md"


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, terminal: TextIO) -> None:
        self.terminal = terminal
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.terminal.write(text)
        self.copy.write(text)
        return len(text)

    def flush(self) -> None:
        self.terminal.flush()


def modules() -> list[str]:
    return [m.name for m in sorted(pkgutil.iter_modules([str(FOLDER)]), key=lambda m: m.name)]


def run_module(name: str) -> tuple[int, str]:
    """Run ``benchmarks.NAME``'s ``main``; (exit status, what it printed)."""
    module = importlib.import_module(f"benchmarks.{name}")
    main = getattr(module, "main", None)
    if not callable(main):
        return 0, ""
    tee = _Tee(sys.stdout)
    status = 0
    with redirect_stdout(tee):
        print(f"\n# benchmarks.{name}", flush=True)
        try:
            result = main([]) if inspect.signature(main).parameters else main()
            status = result if isinstance(result, int) else 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
    return status, tee.copy.getvalue()


def record(doc: Path, name: str, output: str) -> bool:
    """Replace the output block of ``benchmarks.NAME`` in ``doc``; False when it has none."""
    begin, end = f"<!-- output: benchmarks.{name} -->", f"<!-- /output: benchmarks.{name} -->"
    text = doc.read_text()
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if not pattern.search(text):
        return False
    kept = [line for line in output.strip("\n").splitlines() if not line.startswith('{"benchmark"')]
    block = "\n".join([begin, "```text", *kept, "```", end])
    doc.write_text(pattern.sub(lambda _: block, text, count=1))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write each output into docs/benchmarks.md")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these modules only")
    args = parser.parse_args(argv)
    names = [n for n in modules() if not n.startswith("_")]
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        parser.error(f"no benchmark module {', '.join(unknown)} (there are: {', '.join(names)})")
    failed = []
    for name in args.only or names:
        status, output = run_module(name)
        if status:
            failed.append(f"{name} (exit {status})")
        if args.record and output and record(DOC, name, output):
            print(f"recorded benchmarks.{name} in {DOC.relative_to(FOLDER.parent)}", flush=True)
    if failed:
        print(f"benchmarks that did not pass: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
