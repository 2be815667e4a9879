"""What each stage of the DAG runs and reads, declared once for both engines.

- `METHODS`: the budgeted training methods; the Snakefile imports it, dvc.yaml reads it as a `vars` file
  (DVC parses module-level literals of a .py file), the leaderboard imports it.
- `STAGES`: stage -> the `gsm8k` command it runs and the params.yaml sections it reads. The Snakefile
  takes the sections from here, the CLI hands a command only those, dvc.yaml spells them out
  (`python -m gsm8k_pipeline.dag` rewrites its lists), and tests/test_parity.py checks the engines agree.
- `code_deps(command)`: the source files a command really executes — the import closure of the CLI and
  of the command's handler, found by reading the code (no import, so planning stays fast). The Snakefile
  declares exactly these as inputs, and the parity test holds dvc.yaml's deps to the same list, so an
  edit to any module reruns exactly the stages that import it.

Standard library only: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "gsm8k_pipeline"
SRC = Path("src") / PACKAGE

METHODS = ["full_sft", "grpo", "sft_from_traces"]
# Sections that say where and how jobs are scheduled, not what they compute: no stage reads them, so
# changing them reruns nothing (the leaderboard's "every section" leaves them out too).
SCHEDULING = ["resources"]

# Snakemake's stand-in for DVC's content hash of a directory dependency: base_model's param of this name is
# the selected local model folder's sha256, while dvc.yaml declares models/pretrained as a dependency.
CONTENT_PARAM = "base_model_content"

# The torch stages read `threads`: the thread count changes float sums, hence the results. Those that run
# a model read its `precision`; base_model writes the weights of a dequantised GGUF model in it.
_TORCH = ["seed", "threads", "prompt"]
_MODEL = [*_TORCH, "precision"]
_TRAIN = [*_MODEL, "lora", "train"]
# stage -> (command, params sections it reads). The leaderboard's None means every section but SCHEDULING:
# it records a digest of them all as provenance.
STAGES: dict[str, tuple[str, list[str] | None]] = {
    # Validates the whole params file before any other stage runs; it depends on params.yaml as a file, so
    # any edit reruns it, and it hands no section to a stage (dvc.yaml, workflow/rules/common.smk).
    "check_params": ("check-params", []),
    "download": ("download", ["data"]),
    "base_model": ("base-model", [*_MODEL, "base_model"]),
    "prep_sft": ("train-sft", [*_TRAIN, "prep_sft"]),
    "full_sft": ("train-sft", [*_TRAIN, "full_sft"]),
    "grpo": ("train-grpo", [*_TRAIN, "grpo"]),
    "traces": ("generate-traces", [*_MODEL, "traces"]),
    "sft_from_traces": ("train-sft", [*_TRAIN, "full_sft"]),
    "eval": ("evaluate", [*_MODEL, "eval", "lm_eval"]),
    "eval_budget": ("evaluate", [*_MODEL, "eval", "lm_eval"]),
    "leaderboard": ("leaderboard", None),
}


def result_sections(params: dict) -> list[str]:
    """The sections that make results: not where and how jobs are scheduled (SCHEDULING), nor what one
    command was asked to do (`run`)."""
    return [k for k in params if k not in SCHEDULING and k != "run"]


def stage_params(stage: str, params: dict) -> dict:
    """The params.yaml sections `stage` reads, from a loaded params dict."""
    sections = STAGES[stage][1]
    return {k: params[k] for k in (sections if sections is not None else result_sections(params))}


def _module_file(root: Path, dotted: str) -> Path | None:
    """The file of package module `dotted` (e.g. gsm8k_pipeline.workspace.cli) under root/src."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root / "src" / Path(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(root: Path, path: Path, nodes) -> set[str]:
    """Dotted package modules imported by `nodes` (AST nodes of the file `path`)."""
    package = list(path.relative_to(root / "src").parent.parts)  # the package the file belongs to
    found = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                found.update(a.name for a in sub.names)
            elif isinstance(sub, ast.ImportFrom):
                if sub.level:
                    base = package[: len(package) - (sub.level - 1)]
                    module = ".".join(base + ([sub.module] if sub.module else []))
                else:
                    module = sub.module or ""
                found.add(module)
                # `from . import grader` imports a module; `from .x import name` imports x only.
                found.update(f"{module}.{a.name}" for a in sub.names)
    return {m for m in found if m.split(".")[0] == PACKAGE}


def _closure(root: Path, modules: set[str], files: set[Path]) -> set[Path]:
    """`files` plus every package file that importing `modules` runs (files already in it aren't read)."""
    files = set(files)
    todo = list(modules)
    while todo:
        dotted = todo.pop()
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parents = [".".join(dotted.split(".")[:k]) for k in range(1, dotted.count(".") + 1)]
        for name in [*parents, dotted]:
            path = _module_file(root, name)
            if path is None or path in files:
                continue
            files.add(path)
            todo.extend(_imports(root, path, [ast.parse(path.read_text(), str(path))]))
    return files


def code_deps(command: str, root: Path | str = ".") -> list[str]:
    """Source files (relative to root) that `gsm8k <command>` executes: cli.py's module-level imports and
    shared helpers, plus the imports of the command's own handler `_cmd_<command>`, closed transitively.
    Other handlers' imports are left out: argparse runs only the chosen command's handler."""
    root = Path(root)
    cli = root / SRC / "cli.py"
    tree = ast.parse(cli.read_text(), str(cli))
    handler = "_cmd_" + command.replace("-", "_")
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if handler not in {f.name for f in functions}:
        raise KeyError(f"{cli}: no handler {handler} for command {command!r}")
    shared = [n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name.startswith("_cmd_"))]
    own = [f for f in functions if f.name == handler]
    files = _closure(root, {PACKAGE} | _imports(root, cli, shared + own), files={cli})
    return sorted(str(p.relative_to(root)) for p in files)


def sync_dvc_yaml(path: Path | str = "dvc.yaml", root: Path | str = ".") -> bool:
    """Rewrite every stage's code deps in dvc.yaml (its `- src/gsm8k_pipeline/...` lines) to code_deps of
    the stage's command, and its params list to STAGES; True if anything changed. Text in, text out:
    comments stay."""
    path = Path(path)
    lines = path.read_text().splitlines(keepends=True)
    start = next(k for k, line in enumerate(lines) if line.startswith("stages:"))
    out, stage, command, i = lines[:start], None, None, start
    while i < len(lines):
        line = lines[i]
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            stage, command = line.strip()[:-1], None  # a new stage
        if line.strip() == "params:" and STAGES.get(stage, (None, None))[1] is not None:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(line)
            i += 1
            while i < len(lines) and lines[i].startswith(indent + "  - "):
                i += 1
            out += [f"{indent}  - {section}\n" for section in STAGES[stage][1]]
            continue
        words = line.replace("cmd:", " ").split()
        if command is None and len(words) >= 2 and words[0] == "gsm8k":
            command = words[1]
        if line.lstrip().startswith(f"- {SRC.as_posix()}/"):
            indent = line[: len(line) - len(line.lstrip())]
            while i < len(lines) and lines[i].lstrip().startswith(f"- {SRC.as_posix()}/"):
                i += 1
            out += [f"{indent}- {dep}\n" for dep in code_deps(command, root)]
            continue
        out.append(line)
        i += 1
    text = "".join(out)
    changed = text != path.read_text()
    if changed:
        path.write_text(text)
    return changed


if __name__ == "__main__":  # python -m gsm8k_pipeline.dag: bring dvc.yaml up to date with the code
    print("dvc.yaml: code deps and params updated" if sync_dvc_yaml() else "dvc.yaml: already up to date")
