"""What a benchmark records about the run around it: the machine, the commit, and a pause of
the garbage collector while the clock runs. Shared by ``tradecore demo``'s core summary and the
scripts in ``bench/`` (the nautilus peer script imports it from the repository's package too).
"""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["GcPaused", "git_commit", "machine_info"]


class GcPaused:
    """Context manager: the cyclic garbage collector off (after a full collection) while the
    clock runs, restored afterwards."""

    def __enter__(self) -> None:
        self._was = gc.isenabled()
        gc.collect()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._was:
            gc.enable()


def machine_info(**extra: Any) -> dict[str, Any]:
    """CPU model, cores, Python, platform and the 1-minute load average, plus ``extra``."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loadavg_1m": round(load[0], 2),
        **extra,
    }


def git_commit(repo: Path) -> str:
    """Short hash of ``repo``'s HEAD, or ``"unknown"`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()
