"""`gsm8k params merge OVERLAY`: params.yaml overlaid with a config of configs/ (only what differs), for DVC.

Snakemake merges an overlay itself (`--configfile configs/gpu.yaml`); DVC reads params.yaml alone, so this
writes the merged file there: mappings merged key by key, any other value (a list, a number) replaced, as
Snakemake merges them. The base is params.yaml as committed (git HEAD), so overlays don't pile up: merging
configs/smollm2.yaml after configs/gpu.yaml gives params.yaml + smollm2.yaml. The merged file says so in its
first line, with a digest of what it wrote; a params.yaml that differs both from the committed one and from
what a merge wrote has edits of yours, and is not overwritten without --force. `git checkout params.yaml`
goes back to the default.

A tool, not a stage: no stage imports this module, so editing it reruns nothing.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import yaml

from .. import PipelineError
from ..fileio import atomic_write_text
from ..params import ParamsError, overlay, read, validate

HEADER = (
    "# Written by `gsm8k params merge {overlay}`: params.yaml (git HEAD) overlaid with {overlay}; sha256 {digest}\n"
)


def load(overlay_path: Path, base_path: Path = Path("params.yaml")) -> dict:
    """`base_path` overlaid with `overlay_path`, validated: the params a run with that overlay uses."""
    base, over = read(base_path), read(overlay_path)
    if not isinstance(over, dict):
        raise ParamsError(f"{overlay_path}: an overlay is a mapping of the params.yaml keys it changes")
    return validate(overlay(base, over), overlay_path)


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _committed(path: Path) -> str | None:
    """`path` as committed at git HEAD, or None outside a git checkout (or for a file git doesn't know)."""
    proc = subprocess.run(
        ["git", "show", f"HEAD:./{path.name}"], cwd=path.resolve().parent, capture_output=True, text=True
    )
    return proc.stdout if proc.returncode == 0 else None


def _written_by_merge(text: str) -> bool:
    """Whether `text` is exactly what a merge wrote: its header's digest matches the rest."""
    first, _, body = text.partition("\n")
    return first.startswith("# Written by `gsm8k params merge") and first.endswith(f"sha256 {_digest(body)}")


def merge(overlay_path: Path, params_path: Path = Path("params.yaml"), force: bool = False) -> dict:
    """Write params_path = committed params_path overlaid with overlay_path; the merged params."""
    current = params_path.read_text(encoding="utf-8") if params_path.exists() else None
    committed = _committed(params_path)
    if committed is None and current is not None and _written_by_merge(current):
        raise PipelineError(
            f"{params_path} was written by a merge and git has no committed version to start "
            "from: restore the default params file first"
        )
    base_text = committed if committed is not None else current
    if base_text is None:
        raise ParamsError(f"{params_path}: no such params file")
    if current not in (None, base_text) and not _written_by_merge(current) and not force:
        raise PipelineError(
            f"{params_path} has edits that are not committed; commit them (they become the base), "
            f"`git checkout {params_path}` to drop them, or pass --force to overwrite them"
        )
    base = yaml.safe_load(base_text)
    over = read(overlay_path)
    if not isinstance(over, dict):
        raise ParamsError(f"{overlay_path}: an overlay is a mapping of the params.yaml keys it changes")
    merged = validate(overlay(base, over), overlay_path)
    body = yaml.safe_dump(merged, sort_keys=False)
    atomic_write_text(params_path, HEADER.format(overlay=overlay_path, digest=_digest(body)) + body)
    return merged


def add_cli(sub) -> None:
    p = sub.add_parser("params", help="params files: merge an overlay config into params.yaml (for DVC)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    m = actions.add_parser(
        "merge",
        help="write params.yaml = committed params.yaml overlaid with OVERLAY",
        description=__doc__.split("\n\n")[1],
    )
    m.add_argument("overlay", type=Path, metavar="OVERLAY", help="e.g. configs/gpu.yaml")
    m.add_argument(
        "--params",
        metavar="FILE",
        type=Path,
        default=Path("params.yaml"),
        help="the file to write (default: %(default)s)",
    )
    m.add_argument("--force", action="store_true", help="overwrite uncommitted edits of the params file")
    m.set_defaults(func=_run)


def _run(args) -> int:
    merge(args.overlay, args.params, args.force)
    print(f"{args.params}: committed params overlaid with {args.overlay}; `dvc repro` runs it")
    return 0
