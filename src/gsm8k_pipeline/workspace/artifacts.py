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

`list` shows one row per artifact: its size (a directory's: the sum over its manifest), file count and upload
time (the file's, or its manifest's, which is written last). `get` lands everything in a hidden staging
folder first; the destination is exactly LOCAL_PATH (or OUT_DIR/NAME), never a folder inside an existing
one: taken, it is refused unless `replace`, which swaps the checked copy in. `rm` deletes one's own
artifact, never another agent's. `sync_up`/`sync_down` (sync.py) compare by size and SHA-256.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import AGENT_ID_RE, KINDS, AlreadyExists, NotFound, WorkspaceError, printable, validate_agent_id
from .store import NO_HARDLINKS, Store, _check_rel, _chunks, _copy_of, _save_local, _sha256_of

ROOT = "artifacts"
NAME_RE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,127}")
MAX_VERSIONS = 999
# Hidden (listings skip dot names, and no uploaded name may start with one), and written last.
MANIFEST = ".manifest.json"
MANIFEST_FORMAT = "gsm8k-artifact-manifest/1"
# Puts of at least this many bytes report progress on stderr (CLI only; see Progress).
PROGRESS_MIN = 64 * 2**20


def human(size: int | None) -> str:
    """1234567 -> '1.2 MB' (decimal units, as `ls -h --si`)."""
    if size is None:
        return "?"
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 999.95 or unit == "TB":
            return f"{size:.1f} {unit}"
    return f"{size:.1f} TB"


class Progress:
    """Bytes sent by one large put, on stderr: on a terminal one line rewritten in place (at most five
    times a second), otherwise (a log) one line per tenth of the way."""

    def __init__(self, label: str, total: int, stream=None):
        self.label, self.total, self.stream = label, max(total, 1), stream or sys.stderr
        self.sent, self.tenths, self.shown = 0, 0, 0.0
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False

    def line(self) -> str:
        return f"put {self.label}: {human(self.sent)} of {human(self.total)} ({100 * self.sent // self.total} %)"

    def __call__(self, n: int) -> None:
        self.sent += n
        if self.tty:
            now = time.monotonic()
            if now - self.shown >= 0.2 or self.sent >= self.total:
                self.shown = now
                self.stream.write("\r" + self.line())
                self.stream.flush()
        elif (tenths := self.sent * 10 // self.total) > self.tenths:
            self.tenths = tenths
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and self.sent:
            self.stream.write("\n")
            self.stream.flush()


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


def _local_tree(root: Path, select: Callable[[str], bool] | None = None) -> tuple[list[str], list[str], list[str]]:
    """(directories, files, warnings) under a local directory, as relative POSIX paths. With `select`, only
    the files it accepts (by relative path), and only the directories that hold them."""
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
            elif select is None or select(rel):
                files.append(rel)
    if select is not None:
        dirs = sorted({"/".join(f.split("/")[:k]) for f in files for k in range(1, f.count("/") + 1)})
    for rel in dirs + files:
        for part in rel.split("/"):
            check_name(part, "file name")
    return dirs, files, warnings


def _digest(path: str) -> tuple[int, str]:
    """(size, SHA-256 hex) of a local file."""
    return _sha256_of(_chunks(path))


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
    select: Callable[[str], bool] | None = None,
    progress: bool = False,
    first_version: int = 1,
) -> PutResult:
    """Upload a file or directory as `artifacts/KIND/AGENT/NAME`. `select` keeps only the files of a
    directory it accepts (by path inside it); `progress` reports large puts on stderr (Progress);
    `first_version` (with new_version) skips lower versions (sync uploads after the latest one)."""
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
    dirs, files, warnings = _local_tree(local, select) if is_dir else ([], [], [])
    if not is_dir and not local.is_file():
        raise WorkspaceError(f"{local}: not a regular file or directory")
    manifest = _manifest(local, files) if is_dir else None
    total = sum(m["size"] for m in manifest["files"].values()) if is_dir else local.stat().st_size
    report = Progress(f"{kind}/{name}", total) if progress and total >= PROGRESS_MIN else None
    parent = f"{ROOT}/{kind}/{agent_id}"
    store.makedirs(parent)
    first = first_version if new_version else 1
    for k in range(first, (MAX_VERSIONS if new_version else 1) + 1):
        dest = f"{parent}/{versioned(name, k)}"
        try:
            if is_dir:
                store.mkdir_new(dest)
            else:
                store.write_new_from_file(dest, str(local), report)
            break
        except AlreadyExists:
            if not new_version:
                raise AlreadyExists(
                    f"{dest} already exists: files are never overwritten; pass --new-version "
                    f"to upload as {versioned(name, 2)} (or the next free version), or "
                    "choose another name with KIND/NEWNAME"
                ) from None
        finally:
            if report is not None and not is_dir:
                report.close()
    else:
        raise WorkspaceError(f"{parent}/{name}: no free version from v{first} up to v{MAX_VERSIONS}")
    result = PutResult(dest, [] if is_dir else [dest], warnings)
    if is_dir:
        try:
            for d in dirs:
                store.makedirs(f"{dest}/{d}")
            for rel in files:
                store.write_new_from_file(f"{dest}/{rel}", str(local / rel), report)
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
        finally:
            if report is not None:
                report.close()
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


def _taken(dest: Path) -> AlreadyExists:
    return AlreadyExists(
        f"{dest} already exists locally: it is never overwritten unless you pass --replace "
        "(a second get never lands inside the first copy)"
    )


def _place(staged: Path, dest: Path, replace: bool) -> None:
    """Move a complete, checked download from staging to `dest`. Without `replace` a taken `dest` is refused
    (hard link for a file, which fails if the name exists); with it, the old copy is swapped out only once
    the new one is whole, so `dest` always holds one complete copy."""
    taken = _taken(dest)
    try:
        if not replace:
            if staged.is_dir():
                if dest.exists() or dest.is_symlink():
                    raise taken
                os.rename(staged, dest)
                return
            try:
                os.link(staged, dest)
            except FileExistsError:
                raise taken from None
            except OSError as exc:
                if exc.errno not in NO_HARDLINKS:
                    raise
                _save_local(str(dest), _copy_of(str(staged)))
            return
        if staged.is_file() and dest.is_file() and not dest.is_symlink():
            os.replace(staged, dest)  # atomic
            return
        old = None
        if dest.exists() or dest.is_symlink():
            old = dest.parent / f".{dest.name}.old-{secrets.token_hex(4)}"
            os.rename(dest, old)
        try:
            os.rename(staged, dest)
        except OSError:
            if old is not None:
                os.rename(old, dest)
            raise
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
    except OSError as exc:
        raise WorkspaceError(f"cannot write {dest}: {exc.strerror or exc}") from None


def get(
    store: Store,
    remote: str,
    local_path: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    replace: bool = False,
) -> list[str]:
    """Download a file or directory to exactly `local_path` (default: OUT_DIR/NAME, OUT_DIR default '.').
    Returns the local files written. A taken destination is refused unless `replace`; a second get never
    lands inside the first copy. Everything lands in a hidden staging folder beside the destination, is
    checked against the manifest (directory uploads), and only then takes its name, so a failed get
    leaves nothing behind and a replaced copy is swapped out whole."""
    path = check_remote(remote)
    if local_path is not None and out_dir is not None:
        raise WorkspaceError("give LOCAL_PATH or --out-dir DIR, not both")
    entry = store.stat(path)
    if entry is None:
        raise NotFound(f"{path}: no such artifact")
    if entry.kind not in ("file", "dir"):
        raise WorkspaceError(f"{path}: not a file or directory")
    name = path.rsplit("/", 1)[-1]
    dest = Path(local_path) if local_path is not None else Path(out_dir if out_dir is not None else ".") / name
    if (dest.exists() or dest.is_symlink()) and not replace:
        raise _taken(dest)
    if entry.kind == "file" and _top(path) == path:  # a single-file artifact: its upload was atomic
        expected: dict[str, dict | None] = {path: None}
    else:
        expected = _expected(store, path, [path] if entry.kind == "file" else [r for r, _ in store.walk_files(path)])
    staging = dest.parent / f".{dest.name}.partial-{secrets.token_hex(4)}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot write {dest}: {exc.strerror or exc}") from None
    staged = staging / ("file" if entry.kind == "file" else "tree")
    try:
        for rel, meta in expected.items():
            if entry.kind == "file":
                target = staged
            else:
                sub = rel[len(path) + 1 :]
                for part in sub.split("/"):  # names come from the server: never let one climb out of dest
                    check_name(part, "file name in the workspace")
                target = staged.joinpath(*sub.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
            store.download(rel, str(target))
            if meta is not None and _digest(str(target)) != (meta["size"], meta["sha256"]):
                raise WorkspaceError(f"{rel}: differs from its manifest (changed after upload): nothing downloaded")
        if entry.kind == "dir":
            staged.mkdir(exist_ok=True)  # an empty upload is an empty folder
        _place(staged, dest, replace)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if entry.kind == "file":
        return [str(dest)]
    return [str(dest.joinpath(*rel[len(path) + 1 :].split("/"))) for rel in expected]


# --- list and rm ------------------------------------------------------------------------------------------


def iso(mtime: float | None) -> str | None:
    return None if mtime is None else datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ArtifactEntry:
    path: str  # KIND/AGENT/NAME
    kind: str
    agent_id: str
    size: int | None  # bytes: the file's, or the sum over a directory upload's manifest
    files: int = 1
    uploaded_at: str | None = None  # UTC, ISO 8601: the file's time, or its manifest's (written last)
    directory: bool = False
    manifest: dict | None = field(default=None, repr=False)  # a directory upload's {path: {size, sha256}}

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "manifest"}


def agent_artifacts(store: Store, kind: str, agent: str) -> tuple[list[ArtifactEntry], list[str]]:
    """One agent's complete artifacts of one kind (directory uploads with their manifests), and warnings
    for the incomplete ones (no manifest: interrupted, or still uploading), which are left out."""
    folder = f"{ROOT}/{kind}/{agent}"
    try:
        entries = store.listdir(folder)
    except NotFound:
        return [], []
    out, warnings = [], []
    for e in sorted(entries, key=lambda e: e.name):
        path = f"{kind}/{agent}/{e.name}"
        if e.kind == "file":
            out.append(ArtifactEntry(path, kind, agent, e.size, 1, iso(e.mtime)))
        elif e.kind == "dir":
            try:
                manifest = _read_manifest(store, f"{folder}/{e.name}")
            except WorkspaceError as exc:
                warnings.append(f"{printable(path, 300)}: {printable(str(exc), 300)}, not listed")
                continue
            if manifest is None:
                warnings.append(
                    f"{printable(path, 300)}: incomplete upload (no manifest: interrupted, or still uploading), "
                    "not listed"
                )
                continue
            mark = store.stat(f"{folder}/{e.name}/{MANIFEST}")
            size = sum(m["size"] for m in manifest.values())
            out.append(ArtifactEntry(path, kind, agent, size, len(manifest), iso(mark and mark.mtime), True, manifest))
    return out, warnings


def list_artifacts(
    store: Store, kind: str | None = None, agent: str | None = None
) -> tuple[list[ArtifactEntry], list[str]]:
    """One entry per artifact (a file, or a whole directory upload), by kind, agent and name."""
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
        for a in sorted(agents, key=lambda e: e.name):
            if a.kind != "dir":
                continue  # README.md
            if not AGENT_ID_RE.fullmatch(a.name):
                warnings.append(f"{ROOT}/{k}/{printable(a.name, 80)!r}: not an agent folder, ignored")
                continue
            if agent and a.name != agent:
                continue
            found, warned = agent_artifacts(store, k, a.name)
            out += found
            warnings += warned
    return out, warnings


def own_artifact(agent_id: str, target: str) -> str:
    """'KIND/NAME' or 'KIND/AGENT/NAME' (optionally 'artifacts/'-prefixed) naming one of `agent_id`'s own
    artifacts -> its workspace path; another agent's is refused."""
    text = (target or "").strip().strip("/")
    if text.startswith(ROOT + "/"):
        text = text[len(ROOT) + 1 :]
    parts = text.split("/")
    if len(parts) == 2 and parts[0] in KINDS:
        parts.insert(1, agent_id)
    if len(parts) != 3 or parts[0] not in KINDS or not AGENT_ID_RE.fullmatch(parts[1]):
        raise WorkspaceError(
            f"{printable(target or '', 120)!r}: name a whole artifact of yours as KIND/NAME or KIND/{agent_id}/NAME "
            f"(KIND: {', '.join(KINDS)}), as `gsm8k artifacts list` shows it"
        )
    kind, owner, name = parts
    if owner != agent_id:
        raise WorkspaceError(
            f"{kind}/{owner}/{printable(name, 128)}: {owner}'s artifact, not yours ({agent_id}): "
            "only its author removes it"
        )
    check_name(name)
    return f"{ROOT}/{kind}/{owner}/{name}"


def rm(store: Store, agent_id: str, target: str) -> str:
    """Delete one of your own artifacts (a file or a whole directory upload, complete or not); never
    another agent's. It vanishes from listings at once (store.remove). Removing a results file regenerates
    LEADERBOARD.md. Returns the workspace path removed."""
    agent_id = validate_agent_id(agent_id)
    path = own_artifact(agent_id, target)
    if store.stat(path) is None:
        raise NotFound(f"{path}: no such artifact")
    store.remove(path)
    if path.split("/")[1] == "results":
        from .publish import regenerate_leaderboard

        regenerate_leaderboard(store)
    return path
