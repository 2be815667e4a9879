"""Artifacts: `artifacts/KIND/AGENT/NAME` — scripts, results, checkpoints, data; never overwritten.

Every artifact sits under its author's agent id, so one agent's files can't even be named by another's
put. Within one's own folder, a second put of the same name fails (create-exclusive), unless
`new_version=True`, which picks the first free name among NAME, NAME.v2, NAME.v3, ... (the version goes
before the first extension: train.py -> train.v2.py, model.tar.gz -> model.v2.tar.gz).

A directory is first read whole (size and SHA-256 of every file, so an unreadable file fails before any
name is claimed), then claimed with an exclusive mkdir, uploaded file by file (each create-exclusive),
and finished by its manifest, `NAME/.manifest.json`, written last and only once the workspace holds every
file at its size. A directory without a manifest is incomplete (interrupted, or still uploading): `list`
skips it with a warning and `get` refuses it; `get` checks every file against the manifest's size and
hash before anything appears locally. An interrupted name stays claimed: upload again with --new-version.
A top-level symlink is refused unless follow_symlinks (symlinks inside a directory are never uploaded).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import AGENT_ID_RE, KINDS, AlreadyExists, NotFound, WorkspaceError, printable, validate_agent_id
from .store import Store, _check_rel, _chunks, _copy_of, _save_local

ROOT = "artifacts"
NAME_RE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,127}")
MAX_VERSIONS = 999
# Hidden (listings skip dot names, and no uploaded name may start with one), and written last.
MANIFEST = ".manifest.json"
MANIFEST_FORMAT = "gsm8k-artifact-manifest/1"


@dataclass
class PutResult:
    path: str  # workspace path of the file or directory created
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_name(name: str, what: str = "name") -> str:
    if not NAME_RE.fullmatch(name or "") or ".." in name:
        raise WorkspaceError(
            f"invalid artifact {what} {printable(name or '', 80)!r}: use letters, digits and "
            "'._+-' (no leading dot, no '..', at most 128 characters)"
        )
    return name


def parse_target(target: str) -> tuple[str, str | None]:
    """'KIND/', 'KIND' or 'KIND/NAME' -> (KIND, NAME or None)."""
    kind, _, name = (target or "").partition("/")
    if kind not in KINDS:
        raise WorkspaceError(
            f"unknown artifact kind {printable(kind, 40)!r} (one of: {', '.join(k + '/' for k in KINDS)})"
        )
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

    def unreadable(exc: OSError):  # os.walk would otherwise skip an unreadable folder in silence
        raise WorkspaceError(f"{exc.filename}: cannot read ({exc.strerror}): nothing uploaded")

    for here, subdirs, names in os.walk(root, onerror=unreadable, followlinks=False):
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


def _digest(path: str) -> tuple[int, str]:
    """(size, SHA-256 hex) of a local file."""
    size, h = 0, hashlib.sha256()
    for chunk in _chunks(path):
        size += len(chunk)
        h.update(chunk)
    return size, h.hexdigest()


def _manifest(local: Path, files: list[str]) -> dict:
    """The manifest of a local directory's files, read before anything is uploaded."""
    out = {}
    for rel in files:
        try:
            size, sha256 = _digest(str(local / rel))
        except OSError as exc:
            raise WorkspaceError(f"{local / rel}: cannot read ({exc.strerror}): nothing uploaded") from None
        out[rel] = {"size": size, "sha256": sha256}
    return {"format": MANIFEST_FORMAT, "files": out}


def put(
    store: Store,
    agent_id: str,
    local_path: str | os.PathLike,
    target: str,
    new_version: bool = False,
    follow_symlinks: bool = False,
) -> PutResult:
    agent_id = validate_agent_id(agent_id)
    kind, name = parse_target(target)
    local = Path(local_path)
    # A link to /etc would publish all of /etc, and so would `etclink/hostname` through a linked parent: every
    # part of the path as given is checked (not the folders above the working directory).
    typed = [Path(*local.parts[: i + 1]) for i in range(len(local.parts))]
    link = next((p for p in reversed(typed) if p.is_symlink()), None)
    if link is not None and not follow_symlinks:
        where = "" if link == local else f"its parent {link} is "
        raise WorkspaceError(
            f"{local}: {where}a symlink (to {printable(os.readlink(link), 200)}), not uploaded; "
            "pass --follow-symlinks to upload what it points to"
        )
    if not local.exists():
        raise WorkspaceError(f"{local}: no such local file or directory")
    # Named as given, not after a link's target: what the user typed is what they expect to find.
    name = name or check_name(local.name or local.resolve().name, "name (rename it with KIND/NEWNAME)")
    is_dir = local.is_dir()
    dirs, files, warnings = _local_tree(local) if is_dir else ([], [], [])
    if not is_dir and not local.is_file():
        raise WorkspaceError(f"{local}: not a regular file or directory")
    manifest = _manifest(local, files) if is_dir else None
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
                raise AlreadyExists(
                    f"{dest} already exists: files are never overwritten; pass --new-version "
                    f"to upload as {versioned(name, 2)} (or the next free version), or "
                    "choose another name with KIND/NEWNAME"
                ) from None
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
            landed = dict(store.walk_files(dest))
            for rel, meta in manifest["files"].items():
                size = landed.get(f"{dest}/{rel}", "no")
                if size not in (None, meta["size"]):  # the local file changed after it was read
                    raise WorkspaceError(f"{dest}/{rel}: {size} bytes uploaded, {meta['size']} read before")
            store.write_new(f"{dest}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
        except WorkspaceError as exc:
            raise WorkspaceError(
                f"{exc} — {dest} is incomplete ({len(result.files)} of {len(files)} files "
                "uploaded, no manifest), so others won't see it; upload again with "
                "--new-version"
            ) from None
    return result


def check_remote(remote: str) -> str:
    """'KIND/AGENT/NAME[/...]' (optionally prefixed 'artifacts/') -> workspace path."""
    text = (remote or "").strip().strip("/")
    if text.startswith(ROOT + "/"):
        text = text[len(ROOT) + 1 :]
    parts = text.split("/")
    if len(parts) < 2 or parts[0] not in KINDS or not AGENT_ID_RE.fullmatch(parts[1]):
        raise WorkspaceError(
            f"{printable(remote or '', 120)!r}: name an artifact as KIND/AGENT[/NAME...] "
            f"(KIND: {', '.join(KINDS)}), as `gsm8k artifacts list` shows it"
        )
    _check_rel(text)
    return f"{ROOT}/{text}"


def _top(rel: str) -> str:
    """The artifact a workspace path belongs to: artifacts/KIND/AGENT/NAME."""
    return "/".join(rel.split("/")[:4])


def _read_manifest(store: Store, top: str) -> dict | None:
    """{file path relative to the directory upload: {"size", "sha256"}}, or None when it has no manifest."""
    try:
        doc = json.loads(store.read(f"{top}/{MANIFEST}"))
    except NotFound:
        return None
    except (ValueError, WorkspaceError) as exc:
        raise WorkspaceError(f"{top}/{MANIFEST}: unreadable manifest ({printable(str(exc), 200)})") from None
    files = doc.get("files") if isinstance(doc, dict) and doc.get("format") == MANIFEST_FORMAT else None
    if not isinstance(files, dict) or not all(
        isinstance(m, dict) and type(m.get("size")) is int and isinstance(m.get("sha256"), str) for m in files.values()
    ):
        raise WorkspaceError(f"{top}/{MANIFEST}: not a {MANIFEST_FORMAT} manifest")
    return files


def _expected(store: Store, path: str, rels: list[str]) -> dict[str, dict | None]:
    """For each workspace file under `path` to download, its manifest entry (None for a single-file
    artifact). Files of a directory upload that its manifest doesn't list were not part of the upload and
    are left out; a directory upload without a manifest, or missing a listed file, is refused."""
    manifests: dict[str, dict] = {}
    out: dict[str, dict | None] = {}
    for rel in rels:
        top = _top(rel)
        if top == rel:
            out[rel] = None
            continue
        if top not in manifests:
            manifests[top] = _read_manifest(store, top)
            if manifests[top] is None:
                raise WorkspaceError(
                    f"{top}: incomplete upload (no manifest: interrupted, or still uploading), "
                    "not downloaded; its author can upload it again with --new-version"
                )
        meta = manifests[top].get(rel[len(top) + 1 :])
        if meta is not None:
            out[rel] = meta
    for top, files in manifests.items():
        for sub in files:
            full = f"{top}/{sub}"
            if (full == path or full.startswith(path + "/")) and full not in out:
                raise WorkspaceError(
                    f"{full}: listed in the manifest but missing from the workspace: nothing downloaded"
                )
    return out


def get(store: Store, remote: str, local_path: str | os.PathLike | None = None) -> list[str]:
    """Download a file or directory; local files are never overwritten. Returns the local files written.
    Files of a directory upload land in a hidden staging folder beside the destination, are checked
    against the manifest, and only then take their name, so a failed get leaves nothing behind."""
    path = check_remote(remote)
    entry = store.stat(path)
    if entry is None:
        raise NotFound(f"{path}: no such artifact")
    if entry.kind not in ("file", "dir"):
        raise WorkspaceError(f"{path}: not a file or directory")
    name = path.rsplit("/", 1)[-1]
    dest = Path(local_path) if local_path is not None else Path(name)
    if local_path is not None and dest.is_dir():
        dest = dest / name  # like cp: into an existing directory
    if dest.exists():
        raise AlreadyExists(f"{dest} already exists locally (it is never overwritten): choose another destination")
    if entry.kind == "file" and _top(path) == path:  # a single-file artifact: its upload was atomic
        store.download(path, str(dest))
        return [str(dest)]
    expected = _expected(store, path, [path] if entry.kind == "file" else [r for r, _ in store.walk_files(path)])
    staging = dest.parent / f".{dest.name}.partial-{secrets.token_hex(4)}"
    staging.mkdir(parents=True)
    try:
        for rel, meta in expected.items():
            sub = name if entry.kind == "file" else rel[len(path) + 1 :]
            for part in sub.split("/"):  # names come from the server: never let one climb out of dest
                check_name(part, "file name in the workspace")
            target = staging.joinpath(*sub.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            store.download(rel, str(target))
            if meta is not None and _digest(str(target)) != (meta["size"], meta["sha256"]):
                raise WorkspaceError(f"{rel}: differs from its manifest (changed after upload): nothing downloaded")
        if entry.kind == "file":
            _save_local(str(dest), _copy_of(str(staging / name)))
        else:
            try:
                os.rename(staging, dest)
            except OSError as exc:
                raise WorkspaceError(f"cannot write {dest}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if entry.kind == "file":
        return [str(dest)]
    return [str(dest.joinpath(*rel[len(path) + 1 :].split("/"))) for rel in expected]


@dataclass
class ArtifactEntry:
    path: str  # KIND/AGENT/NAME...
    kind: str
    agent_id: str
    size: int | None


def list_artifacts(
    store: Store, kind: str | None = None, agent: str | None = None
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
            complete: dict[str, bool] = {}  # directory upload -> has a manifest
            for rel, size in store.walk_files(f"{ROOT}/{k}/{a.name}"):
                top = _top(rel)
                if top != rel:
                    if top not in complete:
                        complete[top] = store.exists(f"{top}/{MANIFEST}")
                        if not complete[top]:
                            warnings.append(
                                f"{printable(top[len(ROOT) + 1 :], 300)}: incomplete upload "
                                "(no manifest: interrupted, or still uploading), not listed"
                            )
                    if not complete[top]:
                        continue
                out.append(ArtifactEntry(rel[len(ROOT) + 1 :], k, a.name, size))
    return out, warnings
