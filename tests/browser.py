"""Headless Chromium (Debian's `chromium`; .ci/run installs it), to check what a page really shows."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Root can't use the sandbox; no GPU here; give the page's scripts time to render before the snapshot.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=20000"]


def _chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} missing: apt-get install -y chromium (.ci/run does this)")
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=timeout, check=True)


def rendered_dom(page: Path) -> str:
    """The page's DOM after its scripts ran."""
    return _chromium("--dump-dom", page.resolve().as_uri()).stdout


def screenshot(page: Path, out: Path, size: str = "1400,2400") -> Path:
    _chromium(f"--window-size={size}", f"--screenshot={out}", page.resolve().as_uri())
    return out
