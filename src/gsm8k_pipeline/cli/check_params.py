"""`gsm8k check-params`: the check_params stage, which validates params.yaml before any other stage runs."""

from __future__ import annotations

from pathlib import Path

from . import add_stage

# What the check_params stage writes when the params validate. Constant, so that a params edit reruns no
# stage through it: every stage depends on it only to run after the check (dvc.yaml, workflow/rules).
CHECKED = "params validated by `gsm8k check-params`; every stage runs after this check\n"


def add_cli(sub) -> None:
    p = add_stage(sub, "check-params", "validate params.yaml against the schema")
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help="when valid, write this (constant) file: what the DAG's stages depend on",
    )
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..fileio import atomic_write_text
    from ..params import resolve

    try:
        params = resolve(args.params)
        _check_base_folder(args.params, params)
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
    print(f"{args.params}: ok")
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
