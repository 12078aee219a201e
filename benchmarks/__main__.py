"""``python -m benchmarks`` (``make bench``): run every benchmark module of this folder in turn.

A benchmark module is any ``benchmarks/*.py`` not starting with ``_`` that has a ``main()``
(or ``main(argv)``, given no arguments); each runs with its defaults. ``--only NAME`` runs
the named ones, ``--list`` names them all.

With ``--record``, what a module printed (its environment header, progress and tables; not
its JSON line) replaces the block between these two lines, in whichever of docs/*.md and
README.md holds them (docs/benchmarks.md for timings, docs/statistics.md for the
simulation tables):

    <!-- output: benchmarks.NAME -->
    <!-- /output: benchmarks.NAME -->

so every figure there is the verbatim output of the command its section names. A module
whose markers are absent is run but recorded nowhere; a module that fails (non-zero exit)
is not recorded: its block keeps the last good run, dated by its own header. The runner
ends with a table of every module's exit status and wall time and the total; a full run
(every module, in any order: ``--only`` may list them all) records it in the
``<!-- output: benchmarks -->`` block of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import io
import json
import pkgutil
import re
import sys
import time
import traceback
from contextlib import redirect_stdout
from pathlib import Path
from typing import TextIO

FOLDER = Path(__file__).parent
ROOT = FOLDER.parent
DOC = ROOT / "docs" / "benchmarks.md"
RUNNER = "benchmarks"  # the marker name of the runner's own summary block
MARKER = re.compile(r"^<!-- output: (benchmarks(?:\.\w+)?) -->$", re.M)  # a line of its own


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


def benchmark_names() -> list[str]:
    """The benchmark modules: ``benchmarks/*.py`` not starting with ``_``."""
    return [n for n in modules() if not n.startswith("_")]


def documents() -> list[Path]:
    """The files the recorder writes into: docs/*.md and README.md."""
    return [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]


def markers(doc: Path) -> list[str]:
    """The output blocks of ``doc``, by name (``benchmarks.NAME``, or ``benchmarks`` for the runner)."""
    return MARKER.findall(doc.read_text())


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
            if isinstance(exc.code, str):  # the module's own one-line reason
                print(f"benchmarks.{name}: {exc.code}", flush=True)
        except Exception:
            traceback.print_exc()
            return 1, ""
    return status, tee.copy.getvalue()


def _json_line(line: str) -> bool:
    """A benchmark's machine-readable line (a JSON object), left out of the docs."""
    if not (line.startswith("{") and line.endswith("}")):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def record(doc: Path, name: str, output: str) -> bool:
    """Replace the output block of ``benchmarks.NAME`` in ``doc``; False when it has none.

    ``name`` is a module's name, or ``RUNNER`` for the runner's own summary block.
    """
    key = RUNNER if name == RUNNER else f"benchmarks.{name}"
    begin, end = f"<!-- output: {key} -->", f"<!-- /output: {key} -->"
    text = doc.read_text()
    pattern = re.compile("^" + re.escape(begin) + r"\n.*?^" + re.escape(end) + "$", re.S | re.M)
    if not pattern.search(text):
        return False
    kept = [line for line in output.strip("\n").splitlines() if not _json_line(line)]
    block = "\n".join([begin, "```text", *kept, "```", end])
    doc.write_text(pattern.sub(lambda _: block, text, count=1))
    return True


def record_everywhere(name: str, output: str) -> list[Path]:
    """Record ``output`` in every document holding the block of ``name``; the documents written."""
    return [doc for doc in documents() if record(doc, name, output)]


def _summary(timings: list[tuple[str, int, float]], started: float) -> str:
    began = time.strftime("%Y-%m-%d %H:%M", time.gmtime(started))
    lines = [
        f"benchmark run: {len(timings)} modules, started {began} UTC",
        "",
        "| module | exit | wall time |",
        "|---|---:|---:|",
        *(f"| {name} | {status} | {_clock(seconds)} |" for name, status, seconds in timings),
        "",
        f"total wall time: {_clock(time.time() - started)}",
    ]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60:d}:{minutes % 60:02d}:{secs:02d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write each output into its block of docs/*.md")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these modules only")
    parser.add_argument(
        "--list", action="store_true", help="name every benchmark module and where it is recorded"
    )
    args = parser.parse_args(argv)
    names = benchmark_names()
    if args.list:
        where = {key: doc.relative_to(ROOT) for doc in documents() for key in markers(doc)}
        for name in names:
            print(f"{name}\t{where.get(f'benchmarks.{name}', 'not recorded')}")
        return 0
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        parser.error(f"no benchmark module {', '.join(unknown)} (there are: {', '.join(names)})")
    failed, timings, started = [], [], time.time()
    for name in args.only or names:
        start = time.monotonic()
        status, output = run_module(name)
        timings.append((name, status, time.monotonic() - start))
        if status:
            failed.append(f"{name} (exit {status})")
        # a failed run is reported (below and in the summary), never recorded over the last good block
        for doc in record_everywhere(name, output) if args.record and output and not status else []:
            print(f"recorded benchmarks.{name} in {doc.relative_to(ROOT)}", flush=True)
    summary = _summary(timings, started)
    print(f"\n{summary}", flush=True)
    if args.record and set(args.only or names) == set(names) and record(DOC, RUNNER, summary):
        print(f"recorded the run's summary in {DOC.relative_to(ROOT)}", flush=True)
    if failed:
        print(f"benchmarks that did not pass: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
