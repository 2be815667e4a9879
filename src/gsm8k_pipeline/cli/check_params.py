"""`gsm8k check-params`: the check_params stage, which validates params.yaml before any other stage runs, and
the preflight (preflight.py): what a run of these params needs from this machine (the hub, vLLM, a GPU) and
about how long it takes.

--params takes a whole params file or an overlay of configs/ (only what differs, e.g. configs/gpu.yaml),
which is checked over ./params.yaml as Snakemake's --configfile and `gsm8k params merge` read it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from . import add_stage

# What the check_params stage writes when the params validate. Constant, so that a params edit reruns no
# stage through it: every stage depends on it only to run after the check (dvc.yaml, workflow/rules).
CHECKED = "params validated by `gsm8k check-params`; every stage runs after this check\n"
BASE = Path("params.yaml")


def add_cli(sub) -> None:
    p = add_stage(sub, "check-params", "validate params.yaml and check what a run of it needs here")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        type=Path,
        default=None,
        help="when valid, write this (constant) file: what the DAG's stages depend on",
    )
    p.add_argument(
        "--warn-only",
        action="store_true",
        help="report the preflight's errors (no hub, no vLLM, no GPU) as warnings and exit 0 if the params are valid",
    )
    p.set_defaults(func=_run)


def load(path: Path) -> tuple[dict, str]:
    """The params `path` stands for, and how it was read: a whole params file, or an overlay (a file that
    lacks some of the schema's top-level keys) over ./params.yaml."""
    from ..params import ParamsError, read, resolve, schema_path

    raw = read(path)
    if isinstance(raw, dict) and BASE.exists() and path.resolve() != BASE.resolve():
        import yaml

        required = yaml.safe_load(schema_path(BASE).read_text()).get("required", [])
        if any(key not in raw for key in required):
            from ..params import overlay, validate

            base = read(BASE)
            if not isinstance(base, dict):
                raise ParamsError(f"{BASE}: not a mapping of params")
            return validate(overlay(base, raw), path), f"{path} over {BASE}"
    resolved = resolve(path)
    return {k: v for k, v in resolved.items() if k != "run"}, str(path)


def _run(args) -> int:
    from ..fileio import atomic_write_text
    from ..preflight import estimate, findings

    try:
        params, what = load(args.params)
        _check_base_folder(args.params, params)
        found = findings(params)
        errors = [f for f in found if f.level == "error" and not args.warn_only]
        for f in found:  # one line each, warnings first
            if f not in errors:
                logging.getLogger("gsm8k_pipeline").warning(f"{what}: {f.message}")
        if len(errors) == 1:  # one line, as every other refusal
            print(
                f"gsm8k check-params: error: {what}: {errors[0].message} (--warn-only checks the params alone)",
                file=sys.stderr,
            )
            raise SystemExit(2)
        for f in errors:
            print(f"gsm8k check-params: error: {what}: {f.message}", file=sys.stderr)
        if errors:
            print(
                f"gsm8k check-params: error: {what}: the params are valid, but this machine lacks what they need "
                f"({len(errors)} errors above; --warn-only checks the params alone)",
                file=sys.stderr,
            )
            raise SystemExit(2)
        if not args.warn_only:
            _check_machine(args.params, params)
    except BaseException:
        # Invalid params: no `checked` file, so no stage can run after this check, not even under
        # `dvc repro --ignore-errors`, which goes on to every stage whose deps exist; DVC pastes budgets and
        # seeds into their shell commands, so a stage run on unchecked params could run their text.
        if args.output is not None:
            args.output.unlink(missing_ok=True)
        raise
    if args.output is not None and not (args.output.exists() and args.output.read_text() == CHECKED):
        atomic_write_text(args.output, CHECKED)
    print(f"{what}: ok")
    if line := estimate(params):
        print(f"{what}: {line}")
    return 0


def _check_base_folder(path: Path, params: dict) -> None:
    """A local base model folder's files (not their content hash: that is base_model's, and can take minutes
    on a large model): a missing or damaged file is named here, before DVC removes models/base."""
    name = params["base_model"]["name"]
    if name == "tiny" or not Path(name).is_dir():
        return
    from .. import PipelineError
    from ..loading import check_folder

    try:
        check_folder(Path(name))
    except PipelineError as exc:
        raise PipelineError(f"{path}: base_model.name: {exc}") from None


def _check_machine(path: Path, params: dict) -> None:
    """What only this machine can tell: `precision` needs a GPU that computes in it. Here, not in the stages,
    since DVC removes a stage's outputs before its command runs. Not under Snakemake, which checks it when it
    parses the workflow, and then only for jobs it runs locally: its check_params job runs on the submit
    host, which need not be the machine (a cluster's GPU node) the stages run on."""
    from . import engine_ancestor

    found = engine_ancestor()
    if found is not None and found[1] == "snakemake":
        return
    from .. import PipelineError
    from ..device import check_precision

    try:
        check_precision(params["precision"])
    except PipelineError as exc:
        raise PipelineError(f"{path}: {exc}") from None
