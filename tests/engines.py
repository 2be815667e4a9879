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


def snakemake_jobs(repo: Path) -> dict[str, dict[str, set[str]]]:
    """Every job of the full DAG (`snakemake -n --forceall`): name -> {"inputs", "outputs"}."""
    out = run(["snakemake", "-n", "--forceall", "--cores", "1"], repo).stdout
    jobs, current = {}, None
    for line in out.splitlines() + [""]:
        if m := _RULE_RE.match(line):
            current = {"rule": m.group(1), "inputs": set(), "outputs": set(), "wildcards": None}
        elif current is not None and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key in ("input", "output"):
                current[key + "s"] = set(value.split(", "))
            elif key == "wildcards":
                current["wildcards"] = "-".join(kv.split("=", 1)[1] for kv in value.split(", "))
        elif current is not None:
            if current["rule"] != "all":
                name = current["rule"] + (f"@{current['wildcards']}" if current["wildcards"] else "")
                jobs[name] = {"inputs": current["inputs"], "outputs": current["outputs"]}
            current = None
    return jobs


def dvc_stages(repo: Path) -> dict[str, dict[str, set[str]]]:
    """Every stage of dvc.yaml, as DVC itself resolves it: name -> {"inputs", "outputs"}."""
    script = (
        "import json, sys\n"
        "from dvc.repo import Repo\n"
        "from dvc.dependency.param import ParamsDependency\n"
        "with Repo(sys.argv[1]) as repo:\n"
        "    print(json.dumps({s.addressing: {\n"
        "        'inputs': sorted(d.def_path for d in s.deps if not isinstance(d, ParamsDependency)),\n"
        "        'outputs': sorted(o.def_path for o in s.outs)} for s in repo.index.stages}))\n"
    )
    out = run(["python", "-c", script, str(repo)], repo).stdout
    stages = {name: {k: set(v) for k, v in io.items()} for name, io in json.loads(out).items()}
    # A directory dep (the leaderboard's metrics/eval) stands for every output of other stages beneath it.
    all_outs = {o for io in stages.values() for o in io["outputs"]}
    for io in stages.values():
        for dep in list(io["inputs"]):
            beneath = {o for o in all_outs if o.startswith(dep.rstrip("/") + "/")}
            if beneath:
                io["inputs"] = (io["inputs"] - {dep}) | beneath
    return stages
