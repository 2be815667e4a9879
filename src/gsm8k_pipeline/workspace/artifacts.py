"""Artifacts: `artifacts/KIND/AGENT/NAME` — scripts, results, checkpoints, data; never overwritten.

Every artifact sits under its author's agent id, so one agent's files can't even be named by another's
put. Within one's own folder, a second put of the same name fails (create-exclusive), unless
`new_version=True`, which picks the first free name among NAME, NAME.v2, NAME.v3, ... (the version goes
before the first extension: train.py -> train.v2.py, model.tar.gz -> model.v2.tar.gz). A directory is
claimed with an exclusive mkdir, then uploaded file by file (each create-exclusive). If that fails midway
the name stays claimed with the files uploaded so far (the error says so); upload again with --new-version.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import KINDS, AGENT_ID_RE, AlreadyExists, NotFound, WorkspaceError, printable, validate_agent_id
from .store import Store, _check_rel

ROOT = "artifacts"
NAME_RE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,127}")
MAX_VERSIONS = 999


@dataclass
class PutResult:
    path: str  # workspace path of the file or directory created
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_name(name: str, what: str = "name") -> str:
    if not NAME_RE.fullmatch(name or "") or ".." in name:
        raise WorkspaceError(f"invalid artifact {what} {printable(name or '', 80)!r}: use letters, digits and "
                             "'._+-' (no leading dot, no '..', at most 128 characters)")
    return name


def parse_target(target: str) -> tuple[str, str | None]:
    """'KIND/', 'KIND' or 'KIND/NAME' -> (KIND, NAME or None)."""
    kind, _, name = (target or "").partition("/")
    if kind not in KINDS:
        raise WorkspaceError(f"unknown artifact kind {printable(kind, 40)!r} (one of: {', '.join(k + '/' for k in KINDS)})")
    name = name.rstrip("/") or None
    if name is not None:
        check_name(name)
    return kind, name


def versioned(name: str, k: int) -> str:
    if k == 1:
        return name
    stem, dot, ext = name.partition(".")
    return f"{stem}.v{k}{dot}{ext}"


def _local_tree(root: Path) -> tuple[list[str], list[str], list[str]]:
    """(directories, files, warnings) under a local directory, as relative POSIX paths."""
    dirs, files, warnings = [], [], []
    for here, subdirs, names in os.walk(root, followlinks=False):
        rel_here = Path(here).relative_to(root).as_posix()
        rel_here = "" if rel_here == "." else rel_here
        for d in sorted(subdirs):
            if d.startswith("."):
                warnings.append(f"{printable(os.path.join(rel_here, d))}: hidden directory, not uploaded")
                continue
            if os.path.islink(os.path.join(here, d)):
                warnings.append(f"{printable(os.path.join(rel_here, d))}: symlink, not uploaded")
                continue
            dirs.append(f"{rel_here}/{d}" if rel_here else d)
        subdirs[:] = [d for d in subdirs if not d.startswith(".") and not os.path.islink(os.path.join(here, d))]
        for n in sorted(names):
            full = os.path.join(here, n)
            rel = f"{rel_here}/{n}" if rel_here else n
            if n.startswith("."):
                warnings.append(f"{printable(rel)}: hidden file, not uploaded")
            elif os.path.islink(full) or not os.path.isfile(full):
                warnings.append(f"{printable(rel)}: symlink or special file, not uploaded")
            else:
                files.append(rel)
    for rel in dirs + files:
        for part in rel.split("/"):
            check_name(part, "file name")
    return dirs, files, warnings


def put(store: Store, agent_id: str, local_path: str | os.PathLike, target: str,
        new_version: bool = False) -> PutResult:
    agent_id = validate_agent_id(agent_id)
    kind, name = parse_target(target)
    local = Path(local_path)
    if not local.exists():
        raise WorkspaceError(f"{local}: no such local file or directory")
    name = name or check_name(local.resolve().name, "name (rename it with KIND/NEWNAME)")
    is_dir = local.is_dir()
    dirs, files, warnings = _local_tree(local) if is_dir else ([], [], [])
    if not is_dir and not local.is_file():
        raise WorkspaceError(f"{local}: not a regular file or directory")
    parent = f"{ROOT}/{kind}/{agent_id}"
    store.makedirs(parent)
    for k in range(1, (MAX_VERSIONS if new_version else 1) + 1):
        dest = f"{parent}/{versioned(name, k)}"
        try:
            if is_dir:
                store.mkdir_new(dest)
            else:
                store.write_new_from_file(dest, str(local))
            break
        except AlreadyExists:
            if not new_version:
                raise AlreadyExists(f"{dest} already exists: files are never overwritten; pass --new-version "
                                    f"to upload as {versioned(name, 2)} (or the next free version), or "
                                    "choose another name with KIND/NEWNAME") from None
    else:
        raise WorkspaceError(f"{parent}/{name}: no free version up to v{MAX_VERSIONS}")
    result = PutResult(dest, [] if is_dir else [dest], warnings)
    if is_dir:
        try:
            for d in dirs:
                store.makedirs(f"{dest}/{d}")
            for rel in files:
                store.write_new_from_file(f"{dest}/{rel}", str(local / rel))
                result.files.append(f"{dest}/{rel}")
        except WorkspaceError as exc:
            raise WorkspaceError(f"{exc} — {dest} is incomplete ({len(result.files)} of {len(files)} files "
                                 "uploaded); upload again with --new-version") from None
    return result


def check_remote(remote: str) -> str:
    """'KIND/AGENT/NAME[/...]' (optionally prefixed 'artifacts/') -> workspace path."""
    text = (remote or "").strip().strip("/")
    if text.startswith(ROOT + "/"):
        text = text[len(ROOT) + 1:]
    parts = text.split("/")
    if len(parts) < 2 or parts[0] not in KINDS or not AGENT_ID_RE.fullmatch(parts[1]):
        raise WorkspaceError(f"{printable(remote or '', 120)!r}: name an artifact as KIND/AGENT[/NAME...] "
                             f"(KIND: {', '.join(KINDS)}), as `gsm8k artifacts list` shows it")
    _check_rel(text)
    return f"{ROOT}/{text}"


def get(store: Store, remote: str, local_path: str | os.PathLike | None = None) -> list[str]:
    """Download a file or directory; local files are never overwritten. Returns the local files written."""
    path = check_remote(remote)
    entry = store.stat(path)
    if entry is None:
        raise NotFound(f"{path}: no such artifact")
    name = path.rsplit("/", 1)[-1]
    dest = Path(local_path) if local_path is not None else Path(name)
    if local_path is not None and dest.is_dir():
        dest = dest / name  # like cp: into an existing directory
    if dest.exists():
        raise AlreadyExists(f"{dest} already exists locally (it is never overwritten): choose another destination")
    if entry.kind == "file":
        store.download(path, str(dest))
        return [str(dest)]
    if entry.kind != "dir":
        raise WorkspaceError(f"{path}: not a file or directory")
    written = []
    dest.mkdir(parents=True)
    for rel, _size in store.walk_files(path):
        sub = rel[len(path) + 1:]
        for part in sub.split("/"):  # names come from the server: never let one climb out of dest
            check_name(part, "file name in the workspace")
        target = dest.joinpath(*sub.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        store.download(rel, str(target))
        written.append(str(target))
    return written


@dataclass
class ArtifactEntry:
    path: str  # KIND/AGENT/NAME...
    kind: str
    agent_id: str
    size: int | None


def list_artifacts(store: Store, kind: str | None = None, agent: str | None = None
                   ) -> tuple[list[ArtifactEntry], list[str]]:
    if kind is not None and kind not in KINDS:
        raise WorkspaceError(f"unknown artifact kind {printable(kind, 40)!r} (one of: {', '.join(KINDS)})")
    if agent is not None:
        validate_agent_id(agent)
    out, warnings = [], []
    for k in [kind] if kind else KINDS:
        try:
            agents = store.listdir(f"{ROOT}/{k}")
        except NotFound:
            continue
        for a in agents:
            if a.kind != "dir":
                continue  # README.md
            if not AGENT_ID_RE.fullmatch(a.name):
                warnings.append(f"{ROOT}/{k}/{printable(a.name, 80)!r}: not an agent folder, ignored")
                continue
            if agent and a.name != agent:
                continue
            for rel, size in store.walk_files(f"{ROOT}/{k}/{a.name}"):
                out.append(ArtifactEntry(rel[len(ROOT) + 1:], k, a.name, size))
    return out, warnings
