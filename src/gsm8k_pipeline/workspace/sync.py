"""`gsm8k artifacts sync`: a local folder and the workspace made to match, moving only what changed.

Up, `sync LOCAL_DIR KIND[/AGENT]`: every entry of LOCAL_DIR (a file or a folder) is one of your artifacts,
`artifacts/KIND/AGENT/NAME`. It is compared with the latest version already there (the highest of NAME,
NAME.v2, ...): same files, same sizes, same SHA-256 -> unchanged, nothing sent. A new name is uploaded; a
changed one becomes the next version (nothing is ever overwritten), through `put`, so a folder is visible
only once its manifest is written.

Down, `sync KIND/AGENT[/NAME] LOCAL_DIR`: every file of those artifacts (complete uploads only) is compared
with the local file of the same path (LOCAL_DIR/NAME[/...], or LOCAL_DIR/... for one artifact): missing ->
downloaded, other size or SHA-256 -> replaced. Each file lands in a hidden temp file beside its place, is
checked (against the manifest where there is one) and only then renamed over it.

Sizes come from the listing; hashes from a directory upload's manifest, and for a single-file artifact (no
manifest) from reading it, only when the sizes match. Sync never deletes, on either side. `include` and
`exclude` are glob patterns (fnmatch, `*` matches across '/') on the path relative to LOCAL_DIR (e.g.
`ckpt/*.safetensors`); a file is synced when it matches some include (or none are given) and no exclude.
"""

from __future__ import annotations

import fnmatch
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import AGENT_ID_RE, KINDS, NotFound, WorkspaceError, printable, validate_agent_id
from .artifacts import (
    MAX_VERSIONS,
    ROOT,
    _digest,
    _local_tree,
    _manifest,
    _read_manifest,
    agent_artifacts,
    check_name,
    put,
    versioned,
)
from .store import Store


@dataclass
class SyncItem:
    action: str  # "new" or "changed" (uploaded or downloaded); unchanged ones are only counted
    source: str  # what is read: a local path (up) or a workspace path (down)
    dest: str  # where it goes
    size: int


@dataclass
class SyncResult:
    items: list[SyncItem] = field(default_factory=list)
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self, dry_run: bool) -> str:
        new = sum(i.action == "new" for i in self.items)
        changed = len(self.items) - new
        return f"{new} new, {changed} changed, {self.unchanged} unchanged" + (
            " (dry run: nothing transferred)" if dry_run else ""
        )


def selector(include: Iterable[str] = (), exclude: Iterable[str] = ()) -> Callable[[str], bool]:
    """A predicate on relative POSIX paths: matches some include (or there are none), and no exclude."""
    include, exclude = list(include or ()), list(exclude or ())
    for pattern in include + exclude:
        if not pattern or "\x00" in pattern:
            raise WorkspaceError(f"invalid pattern {printable(pattern, 80)!r}: give a glob such as '*.py'")
    return lambda rel: (
        (not include or any(fnmatch.fnmatchcase(rel, p) for p in include))
        and not any(fnmatch.fnmatchcase(rel, p) for p in exclude)
    )


def is_remote(arg: str) -> bool:
    """Whether a sync argument names the workspace side: KIND, KIND/..., or artifacts/KIND/... (a local
    folder of such a name is written ./NAME)."""
    text = (arg or "").strip()
    if text.startswith(ROOT + "/"):
        text = text[len(ROOT) + 1 :]
    return text.split("/", 1)[0] in KINDS


def _parts(arg: str) -> list[str]:
    text = arg.strip().strip("/")
    if text.startswith(ROOT + "/"):
        text = text[len(ROOT) + 1 :]
    return text.split("/")


def _local_digest(path: Path) -> tuple[int, str]:
    try:
        return _digest(str(path))
    except OSError as exc:
        raise WorkspaceError(f"{path}: cannot read ({exc.strerror or exc}): nothing synced") from None


# --- up -----------------------------------------------------------------------------------------------


def _latest(names: set[str], name: str) -> int:
    """The highest k with versioned(name, k) in `names` (0: none)."""
    return max((k for k in range(1, MAX_VERSIONS + 1) if versioned(name, k) in names), default=0)


def sync_up(
    store: Store,
    agent_id: str,
    local_dir: str | os.PathLike,
    target: str,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    dry_run: bool = False,
    progress: bool = False,
) -> SyncResult:
    agent_id = validate_agent_id(agent_id)
    parts = _parts(target)
    if len(parts) == 2 and parts[1] == agent_id:
        parts = parts[:1]
    if len(parts) != 1 or parts[0] not in KINDS:
        if len(parts) == 2 and parts[0] in KINDS and AGENT_ID_RE.fullmatch(parts[1]):
            raise WorkspaceError(
                f"{parts[0]}/{parts[1]}: {parts[1]}'s folder, not yours ({agent_id}): you sync up to your own only"
            )
        raise WorkspaceError(
            f"{printable(target, 120)!r}: sync up to KIND/ or KIND/{agent_id} (KIND: {', '.join(KINDS)}); "
            "each entry of the local folder becomes one artifact"
        )
    kind = parts[0]
    select = selector(include, exclude)
    local = Path(local_dir)
    if not local.is_dir():
        raise WorkspaceError(f"{local}: not a local folder")
    result = SyncResult()
    # First every local file is read (size, SHA-256): an unreadable one stops the sync before the
    # workspace is touched.
    entries = []  # (name, path, sub: the folder's file filter or None for a file, size, sha or files' meta)
    for entry in sorted(os.scandir(local), key=lambda e: e.name):
        name, path = entry.name, Path(entry.path)
        if name.startswith("."):
            result.warnings.append(f"{printable(name)}: hidden, not synced")
            continue
        if entry.is_symlink() or not (entry.is_file() or entry.is_dir()):
            result.warnings.append(f"{printable(name)}: symlink or special file, not synced")
            continue
        try:
            check_name(name)
        except WorkspaceError as exc:
            result.warnings.append(f"{exc}: not synced")
            continue
        if entry.is_file():
            if select(name):
                size, sha = _local_digest(path)
                entries.append((name, path, None, size, sha))
            continue
        sub = lambda rel, name=name: select(f"{name}/{rel}")  # noqa: E731
        _, files, warnings = _local_tree(path, sub)
        result.warnings += [f"{printable(name)}/{w}" for w in warnings]
        if files:
            meta = _manifest(path, files)["files"]
            entries.append((name, path, sub, sum(m["size"] for m in meta.values()), meta))
    # Then each is compared with its latest version in the workspace.
    folder = f"{ROOT}/{kind}/{agent_id}"
    found, warnings = agent_artifacts(store, kind, agent_id)
    result.warnings += warnings
    remote = {a.path.rsplit("/", 1)[-1]: a for a in found}
    try:
        taken = {e.name for e in store.listdir(folder)}  # incomplete uploads too: their names are claimed
    except NotFound:
        taken = set()
    plan = []
    for name, path, sub, size, mine in entries:
        k = _latest(taken, name)
        latest = remote.get(versioned(name, k)) if k else None
        if latest is not None:
            if sub is None and not latest.directory and latest.size == size:
                if store.digest(f"{ROOT}/{latest.path}") == (size, mine):
                    result.unchanged += 1
                    continue
            elif sub is not None and latest.directory:
                if {r: m for r, m in latest.manifest.items() if sub(r)} == mine:
                    result.unchanged += 1
                    continue
        action = "changed" if k else "new"
        plan.append((action, path, name, sub, k + 1))
        result.items.append(SyncItem(action, str(path), f"{kind}/{agent_id}/{versioned(name, k + 1)}", size))
    if dry_run:
        return result
    for item, (action, path, name, sub, first) in zip(result.items, plan):
        done = put(
            store,
            agent_id,
            path,
            f"{kind}/{name}",
            new_version=action == "changed",
            select=sub,
            progress=progress,
            first_version=first,
        )
        item.dest = done.path[len(ROOT) + 1 :]
        result.warnings += [w for w in done.warnings if w not in result.warnings]
    return result


# --- down ---------------------------------------------------------------------------------------------


def _remote_files(store: Store, source: str, result: SyncResult) -> list[tuple[str, str, int, str | None]]:
    """(local relative path, workspace path, size, SHA-256 or None) of every file to sync down."""
    parts = _parts(source)
    if not (2 <= len(parts) <= 3 and parts[0] in KINDS and AGENT_ID_RE.fullmatch(parts[1])):
        raise WorkspaceError(
            f"{printable(source, 120)!r}: sync down from KIND/AGENT or KIND/AGENT/NAME (KIND: {', '.join(KINDS)})"
        )
    kind, agent = parts[:2]
    artifacts, warnings = agent_artifacts(store, kind, agent)
    result.warnings += warnings
    if len(parts) == 3:
        check_name(parts[2])
        artifacts = [a for a in artifacts if a.path == "/".join(parts)]
        if not artifacts:
            top = f"{ROOT}/{'/'.join(parts)}"
            if store.exists(top) and _read_manifest(store, top) is None:
                raise WorkspaceError(
                    f"{top}: incomplete upload (no manifest: interrupted, or still uploading), not downloaded"
                )
            raise WorkspaceError(f"{top}: no such artifact")
    out = []
    for a in artifacts:
        name = a.path.rsplit("/", 1)[-1]
        try:
            check_name(name, "name in the workspace")  # names come from the server: they become local paths
        except WorkspaceError as exc:
            result.warnings.append(f"{exc}: not synced")
            continue
        prefix = "" if (len(parts) == 3 and a.directory) else f"{name}/"
        if not a.directory:
            out.append((name, f"{ROOT}/{a.path}", a.size, None))
            continue
        for rel, meta in sorted(a.manifest.items()):
            for part in rel.split("/"):  # names come from the server: never let one climb out of LOCAL_DIR
                check_name(part, "file name in the workspace")
            out.append((f"{prefix}{rel}", f"{ROOT}/{a.path}/{rel}", meta["size"], meta["sha256"]))
    return out


def sync_down(
    store: Store,
    source: str,
    local_dir: str | os.PathLike,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    dry_run: bool = False,
) -> SyncResult:
    select = selector(include, exclude)
    local = Path(local_dir)
    if local.exists() and not local.is_dir():
        raise WorkspaceError(f"{local}: not a local folder")
    result = SyncResult()
    plan = []
    for rel, path, size, sha in _remote_files(store, source, result):
        if not select(rel):
            continue
        target = local.joinpath(*rel.split("/"))
        for parent in list(target.parents)[: rel.count("/")]:
            if parent.exists() and not parent.is_dir():
                raise WorkspaceError(f"{parent}: a file here, a folder in the workspace: nothing synced")
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise WorkspaceError(f"{target}: not a regular file here, a file in the workspace: nothing synced")
        if target.exists():
            mine = _local_digest(target)
            if mine[0] == size and mine == (size, sha if sha is not None else store.digest(path)[1]):
                result.unchanged += 1
                continue
        action = "changed" if target.exists() else "new"
        plan.append((path, target, size, sha))
        result.items.append(SyncItem(action, path[len(ROOT) + 1 :], str(target), size))
    if dry_run:
        return result
    for path, target, size, sha in plan:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.partial-{secrets.token_hex(4)}"
        try:
            store.download(path, str(tmp))
            got = _digest(str(tmp))
            if got[0] != size or (sha is not None and got[1] != sha):
                what = "its manifest (changed after upload)" if sha is not None else "its listing (changed meanwhile)"
                raise WorkspaceError(f"{path}: differs from {what}: not downloaded")
            os.replace(tmp, target)  # atomic: the old copy, or the whole new one
        except OSError as exc:
            raise WorkspaceError(f"cannot write {target}: {exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
    return result
