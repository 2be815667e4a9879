"""Planning: what the engines need to know about the code, computed when the DAG is planned or dvc.yaml is
regenerated, never while a stage runs (so editing this file reruns nothing).

- `code_deps(command)`: the source files `gsm8k <command>` really executes — the import closure of the
  dispatcher (cli/__init__.py) and of the command's own module, found by reading the code (no import, so
  planning stays fast). The Snakefile declares exactly these as inputs, and the parity test holds dvc.yaml's
  deps to the same list, so an edit to any module reruns exactly the stages that import it.
- `sync_dvc_yaml()`: rewrites dvc.yaml's code deps and params lists from `code_deps` and the stage table
  (gsm8k_pipeline.STAGES): `python -m gsm8k_pipeline.dag` after moving code or adding an import.

Standard library only: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import ast
from pathlib import Path

from . import STAGES
from .cli import module_of

PACKAGE = "gsm8k_pipeline"
SRC = Path("src") / PACKAGE

# Snakemake's stand-in for DVC's content hash of a directory dependency: base_model's param of this name is
# the selected local model folder's sha256, while dvc.yaml declares models/pretrained as a dependency.
CONTENT_PARAM = "base_model_content"


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
    """Source files (relative to root) that `gsm8k <command>` executes: the package's __init__, the
    dispatcher and the command's module, closed transitively over their imports (those inside functions
    too). The dispatcher imports only the command asked for, so other commands' modules are left out."""
    root = Path(root)
    files = _closure(root, {PACKAGE, f"{PACKAGE}.cli", module_of(command)}, files=set())
    return sorted(str(p.relative_to(root)) for p in files)


def dvc_params(stage: str, params: dict) -> list[str]:
    """dvc.yaml's params entries for `stage`: its sections, or, for a section with keys it ignores, each
    other key of it in params.yaml (DVC tracks a key as `section.key`)."""
    spec = STAGES[stage]
    names = []
    for name in spec.sections:
        ignored = [i.partition(".")[2] for i in spec.ignores if i.partition(".")[0] == name]
        names += [f"{name}.{key}" for key in params[name] if key not in ignored] if ignored else [name]
    return names


def sync_dvc_yaml(path: Path | str = "dvc.yaml", root: Path | str = ".") -> bool:
    """Rewrite every stage's code deps in dvc.yaml (its `- src/gsm8k_pipeline/...` lines) to code_deps of
    the stage's command, and its params list to the stage table; True if anything changed. Text in, text out:
    comments stay."""
    import yaml  # here, not at the top: the Snakefile imports this module, and reads params itself

    path = Path(path)
    defaults = yaml.safe_load((Path(root) / "params.yaml").read_text())
    lines = path.read_text().splitlines(keepends=True)
    start = next(k for k, line in enumerate(lines) if line.startswith("stages:"))
    out, stage, command, i = lines[:start], None, None, start
    while i < len(lines):
        line = lines[i]
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            stage, command = line.strip()[:-1], None  # a new stage
        if line.strip() == "params:" and stage in STAGES and STAGES[stage].sections is not None:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(line)
            i += 1
            # The stage table's entries are replaced; a params file's (`- metrics/select/x.json:` and its
            # keys) stay as written.
            while i < len(lines) and lines[i].startswith(indent + "  - ") and not lines[i].rstrip().endswith(":"):
                i += 1
            out += [f"{indent}  - {name}\n" for name in dvc_params(stage, defaults)]
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
