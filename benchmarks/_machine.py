"""The line every benchmark prints under its tables: when, on what, under which load."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime


def stamp() -> str:
    """``Measured <UTC time> on <platform>, <n> CPUs, Python <v>; load average <1/5/15 min>``."""
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.platform()} "
        f"({platform.processor() or platform.machine()}), {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average {load} (1/5/15 min)."
    )
