"""``python -m benchmarks`` (``make bench``): run every benchmark module of this folder in turn.

A benchmark module is any ``benchmarks/*.py`` with a ``main()`` (or ``main(argv)``, given no
arguments); each runs with its defaults.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    folder = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        run = getattr(module, "main", None)
        if callable(run):
            print(f"\n# benchmarks.{info.name}", flush=True)
            sys.stdout.flush()
            run([]) if inspect.signature(run).parameters else run()


if __name__ == "__main__":
    main()
