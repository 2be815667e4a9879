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

    params, what = load(args.params)
    found = findings(params)
    errors = [f for f in found if f.level == "error" and not args.warn_only]
    for f in found:  # one line each, warnings first
        if f not in errors:
            logging.getLogger("gsm8k_pipeline").warning(f"{what}: {f.message}")
    for f in errors:
        print(f"gsm8k check-params: error: {what}: {f.message}", file=sys.stderr)
    if errors:
        print(
            f"gsm8k check-params: error: {what}: the params are valid, but this machine lacks what they need "
            f"({len(errors)} error(s) above; --warn-only checks the params alone)",
            file=sys.stderr,
        )
        return 2
    if args.output is not None and not (args.output.exists() and args.output.read_text() == CHECKED):
        atomic_write_text(args.output, CHECKED)
    print(f"{what}: ok")
    if line := estimate(params):
        print(f"{what}: {line}")
    return 0
