"""Writes that are all-or-nothing: a stage that fails leaves nothing that looks finished."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would otherwise stick to the result
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    # ASCII-escaped: a raw U+2028 (real GSM8K has one) is a line break to many line readers.
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _normal_modes(root: Path, mask: int) -> None:
    """Give `root` and everything in it the modes a plain write would have under `mask`: mkdtemp makes
    the folder 0700 and some writers (safetensors' model.safetensors) files 0600, which would lock the
    group out of a published model."""
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o100
                os.chmod(path, (0o777 if executable else 0o666) & ~mask)


# Inside every model folder (write_manifest): its files and sizes. Snakemake checks only that a directory()
# output exists, so the Snakefile compares each output folder with its manifest (workflow/rules/common.smk)
# to notice a file deleted or truncated inside it, as DVC does by hashing the folder. In the folder itself,
# so that it travels with it (a DVC pull, a copy).
MANIFEST = ".manifest.json"
# Snakemake's own marker in directory() outputs, touched after the job: not part of the content.
_ENGINE_FILES = {MANIFEST, ".snakemake_timestamp"}


def _files(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() not in _ENGINE_FILES
    }


def write_manifest(folder: str | os.PathLike) -> None:
    """`folder`'s MANIFEST: every file in it and its size. Written last, once the folder is complete."""
    folder = Path(folder)
    atomic_write_json(folder / MANIFEST, {"files": _files(folder)})


def manifest_problems(folder: str | os.PathLike) -> list[str]:
    """What is missing from `folder`, or of another size, against its MANIFEST. [] when it matches, or
    when there is no manifest (a folder made before manifests, or by hand). Sizes, not hashes: it runs
    whenever Snakemake plans, and a model's weights can be gigabytes."""
    folder = Path(folder)
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        return []
    problems = []
    for name, size in listed.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.stat().st_size != size:
            problems.append(f"{path} has {path.stat().st_size} bytes, not {size}")
    return problems


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temp dir beside `path`; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        _normal_modes(tmp, _umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _file_stats(folder: Path) -> list[tuple[Path, str]]:
    """(path, "relative name") of a folder's files in name order, dot-files skipped."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if not any(part.startswith(".") for part in rel.parts):
            files.append((path, rel.as_posix()))
    return files


def content_hash(folder: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str:
    """sha256 over a folder's files (relative names and bytes, in name order; dot-files skipped): the
    identity of a local model folder, whatever its path.

    With `cache_dir`, the hash is remembered under a key made of every file's name, size, mtime and
    inode, so an untouched multi-GB folder isn't read again on each run (the Snakefile hashes it when it
    plans); any write to a file changes its mtime, hence the key."""
    import hashlib

    folder = Path(folder)
    files = _file_stats(folder)
    cached = None
    if cache_dir is not None:
        key = hashlib.sha256()
        for path, rel in files:
            st = path.stat()
            key.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
        cached = Path(cache_dir) / key.hexdigest()
        if cached.is_file():
            return cached.read_text().strip()
    digest = hashlib.sha256()
    for path, rel in files:
        digest.update(f"{rel}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    if cached is not None:
        atomic_write_text(cached, digest.hexdigest() + "\n")
    return digest.hexdigest()
