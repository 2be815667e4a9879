"""Ask each engine, for real, what it would run — in DVC's stage naming (eval@base, full_sft@512, ...)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from conftest import run
from gsm8k_pipeline import dag

_RULE_RE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_WILDCARDS_RE = re.compile(r"^\s+wildcards: (.+)$")


def snakemake_plan(repo: Path, *targets: str, forceall: bool = False) -> set[str]:
    """Jobs `snakemake -n` plans, named like DVC stages: rule, or rule@wildcard-values."""
    cmd = ["snakemake", "-n", "--cores", "1", *(["--forceall"] if forceall else []), *targets]
    return _jobs(run(cmd, repo).stdout)


def snakemake_ran(repo: Path, *targets: str) -> set[str]:
    """Jobs a real `snakemake` run ran, named as snakemake_plan names them: what a plan cannot know (a job
    whose param is read once a checkpoint has run) included."""
    proc = run(["snakemake", "--cores", "1", *targets], repo)
    return _jobs(proc.stdout + "\n" + proc.stderr)


def _jobs(out: str) -> set[str]:
    """The jobs Snakemake's output lists (`rule x:` / `localcheckpoint x:` and their `wildcards:` lines)."""
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


# Snakemake's own DAG, asked through its API (`snakemake -n` prints no params): every job of `--forceall`.
_SNAKEMAKE_JOBS = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings
jobs = {}
from snakemake.settings.types import ConfigSettings
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=Path("Snakefile"),
                                workdir=Path("."), config_settings=ConfigSettings(configfiles=[Path(f) for f in sys.argv[1:]]))
    workflow_api.dag(DAGSettings(forceall=True)).execute_workflow(executor="dryrun")
    for job in workflow_api._workflow.dag.jobs:
        if job.rule.name == "all":
            continue
        name = job.rule.name + ("@" + "-".join(job.wildcards) if len(job.wildcards) else "")
        # Each param as DVC names what it tracks: a section, or `section.key` for each key of a section handed
        # only in part (gsm8k_pipeline.Stage.ignores).
        whole = workflow_api._workflow.config
        params = [k if not isinstance(v, dict) or v == whole.get(k) else f"{k}.{sub}"
                  for k, v in job.params.items() for sub in (v if isinstance(v, dict) and v != whole.get(k) else [k])]
        jobs[name] = {"inputs": sorted(job.input), "outputs": sorted(job.output),
                      "params": sorted(set(params)), "cmd": job.shellcmd}
print(json.dumps(jobs))
"""


def _command(cmd: str) -> str:
    """A stage's command, comparable across engines: whitespace normalised, the log redirection (Snakemake
    logs to logs/) and the params file (Snakemake's merged copy of params.yaml) set aside."""
    words = cmd.split()
    if ">" in words:
        words = words[: words.index(">")]
    if "--params" in words:
        i = words.index("--params")
        words[i + 1] = "PARAMS"
    return " ".join(words)


def snakemake_jobs(repo: Path, *args: str) -> dict[str, dict]:
    """Every job of the full DAG: name -> {"inputs", "outputs", "params", "cmd"}; args: `--configfile F`."""
    files = [a for a in args if a != "--configfile"]
    out = run([sys.executable, "-c", _SNAKEMAKE_JOBS, *files], repo).stdout
    # dag.CONTENT_PARAM is Snakemake's stand-in for DVC hashing the content of a directory dependency.
    return {
        name: {
            "inputs": set(job["inputs"]),
            "outputs": set(job["outputs"]),
            # `chosen` (a final run's learning rate, from its selection) is what DVC tracks as a params file's
            # key; both engines list the selection file among the inputs.
            "params": set(job["params"]) - {dag.CONTENT_PARAM, "chosen"},
            "cmd": _command(job["cmd"]),
        }
        for name, job in json.loads(out.splitlines()[-1]).items()
    }


_DVC_STAGES = """
import json, sys
import yaml
from dvc.repo import Repo
from dvc.dependency.param import ParamsDependency
everything = sorted(yaml.safe_load(open("params.yaml")))  # `- params.yaml:` tracks every section
# A params file other than params.yaml (a selection's `chosen`) is a file the stage depends on, as it is
# Snakemake's input.
def own(d):
    return isinstance(d, ParamsDependency) and d.def_path == "params.yaml"
with Repo(".") as repo:
    print(json.dumps({s.addressing: {
        "inputs": sorted(d.def_path for d in s.deps if not own(d)),
        "outputs": sorted(o.def_path for o in s.outs),
        "params": sorted(p for d in s.deps if own(d) for p in (d.params or everything)),
        "cmd": s.cmd} for s in repo.index.stages}))
"""


def dvc_stages(repo: Path) -> dict[str, dict]:
    """Every stage of dvc.yaml, as DVC itself resolves it: name -> {"inputs", "outputs", "params", "cmd"}."""
    out = run([sys.executable, "-c", _DVC_STAGES], repo).stdout
    stages = {
        name: {
            "inputs": set(s["inputs"]),
            "outputs": set(s["outputs"]),
            "params": set(s["params"]),
            "cmd": _command(s["cmd"]),
        }
        for name, s in json.loads(out).items()
    }
    # A directory dep (the leaderboard's metrics/eval) stands for every output of other stages beneath it.
    all_outs = {o for io in stages.values() for o in io["outputs"]}
    for io in stages.values():
        for dep in list(io["inputs"]):
            beneath = {o for o in all_outs if o.startswith(dep.rstrip("/") + "/")}
            if beneath:
                io["inputs"] = (io["inputs"] - {dep}) | beneath
    return stages
