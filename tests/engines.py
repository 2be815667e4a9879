"""Ask each engine, for real, what it would run — in DVC's stage naming (eval@base, full_sft@512, ...)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import run

_RULE_RE = re.compile(r"^(?:local)?rule (\w+):$")
_WILDCARDS_RE = re.compile(r"^\s+wildcards: (.+)$")


def snakemake_plan(repo: Path, *targets: str, forceall: bool = False) -> set[str]:
    """Jobs `snakemake -n` plans, named like DVC stages: rule, or rule@wildcard-values."""
    cmd = ["snakemake", "-n", "--cores", "1", *(["--forceall"] if forceall else []), *targets]
    out = run(cmd, repo).stdout
    jobs, rule = set(), None
    for line in out.splitlines() + [""]:
        if m := _RULE_RE.match(line):
            rule = m.group(1)
            wildcards = None
        elif rule and (m := _WILDCARDS_RE.match(line)):
            wildcards = "-".join(kv.split("=", 1)[1] for kv in m.group(1).split(", "))
        elif rule and not line.startswith(" "):
            if rule != "all":
                jobs.add(f"{rule}@{wildcards}" if wildcards else rule)
            rule = None
    return jobs


def dvc_stale(repo: Path) -> set[str]:
    """Stages `dvc status` reports as changed."""
    out = run(["dvc", "status", "--json"], repo).stdout
    return set(json.loads(out or "{}"))
