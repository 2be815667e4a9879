"""Load and validate params.yaml — the one source of truth for every knob.

Precedence for the few knobs that can also come from elsewhere: command line > environment > params.yaml.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import PipelineError

DEFAULT_PARAMS = Path("params.yaml")
SCHEMA_RELPATH = Path("workflow/schemas/params.schema.yaml")
# The schema of the checkout this package was installed from (editable install); used when the
# params file has no workflow/ beside it.
_PACKAGE_SCHEMA = Path(__file__).resolve().parents[2] / SCHEMA_RELPATH


class ParamsError(PipelineError, ValueError):
    """params.yaml is unreadable or does not match the schema; the message names the file and key."""


def schema_path(params_path: Path) -> Path:
    local = params_path.resolve().parent / SCHEMA_RELPATH
    return local if local.exists() else _PACKAGE_SCHEMA


def _describe(error) -> str:
    import jsonschema  # noqa: F401  (error is a jsonschema.ValidationError)

    where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return f"{where}: unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(allowed)})"
    return f"{where}: {error.message}"


def validate(params: Any, source: Path) -> dict:
    import jsonschema

    schema = yaml.safe_load(schema_path(source).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        raise ParamsError(f"{source}: " + "; ".join(_describe(e) for e in errors))
    # Reserving fewer CPUs than torch runs threads would oversubscribe every scheduled job.
    short = [f"resources.{kind}.cpus: {r['cpus']} is less than threads ({params['threads']})"
             for kind, r in params["resources"].items() if r["cpus"] < params["threads"]]
    if short:
        raise ParamsError(f"{source}: " + "; ".join(short))
    return params


def load(path: str | os.PathLike = DEFAULT_PARAMS) -> dict:
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such params file") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return validate(params, path)


def env_int(name: str, default: int | None) -> int | None:
    """An integer knob from the environment (e.g. EVAL_SAMPLES), falling back to `default`."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ParamsError(f"environment variable {name}={raw!r} is not an integer") from None


# Sections that say where and how a run is scheduled, not what it computes: outside every result.
NOT_RESULTS = ("resources",)


def results_only(params: dict) -> dict:
    return {k: v for k, v in params.items() if k not in NOT_RESULTS}


def digest(params: dict) -> str:
    """Short content digest of a params dict, for provenance in metrics (scheduling sections left out)."""
    blob = json.dumps(results_only(params), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
