"""The workspace's storage layer: an fsspec URL, and a create-exclusive write on every backend.

`open_store(URL)` resolves the URL with fsspec (`fsspec.core.url_to_fs`) and wraps the filesystem in a
`Store` whose paths are relative to the workspace root ("message_board/x.md"). The only way to write a
file is `write_new`, which never replaces an existing file; it raises `AlreadyExists` instead:

* local (plain path, `file://`): the bytes go to a hidden temp file (`O_CREAT|O_EXCL`, fsync'd) which is
  then hard-linked to its name with `link(2)` — atomic, and fails with EEXIST if the name exists — and
  unlinked. Readers never see a half-written file. Where the filesystem has no hard links the file is
  created in place with `O_CREAT|O_EXCL` (still exclusive; briefly partial).
* `sftp://` (sshfs/asyncssh, the fsspec implementation of sftp/ssh): the same dance over SFTP — the temp
  file opened with `SSH_FXF_CREAT|SSH_FXF_EXCL`, then `hardlink@openssh.com` (server-side `link(2)`,
  fails if the target exists); servers without that extension get a plain SFTP `rename`, which the
  protocol forbids from overwriting (OpenSSH implements it as link+unlink). Never `posix-rename@openssh.com`
  (what `fs.mv` uses): it overwrites. Verified against OpenSSH 9.2 by tests/test_workspace_store.py.
* `s3://` (s3fs, not installed by default): `PutObject` with `If-None-Match: *` — S3's conditional write;
  a taken key answers 412 PreconditionFailed. We rely on the store honouring it (AWS S3 does since 2024;
  check other S3-compatible stores).
* `hf://buckets/OWNER/NAME` (huggingface_hub): buckets have no conditional write, so this is
  check-then-write: a race between two writers of the *same* name can lose one. Unique names (every
  message, every publish) make that a non-issue; same-name artifact puts racing each other are not safe.

Directories are claimed with `mkdir` (exclusive on local and SFTP), on object stores with a `.dir` marker
written by `write_new`. `replace` (temp + atomic rename) exists for the one derived file, LEADERBOARD.md.
`remove` exists for `gsm8k artifacts rm` (one's own artifact only, checked by the caller): it first renames
the file or folder to a hidden name (local, SFTP), so it vanishes from listings at once, then deletes it.
Names starting with "." are temp files and markers, hidden from every listing.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import posixpath
import secrets
import shutil
import stat as stat_mod
from dataclasses import dataclass

from . import AlreadyExists, NotFound, WorkspaceError, redact_url, scrub

DEFAULT_READ_LIMIT = 16 * 2**20


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "file", "dir" or "other"
    size: int | None = None
    mtime: float | None = None  # seconds since the epoch (UTC) when the backend reports it


class TooLarge(WorkspaceError):
    pass


def _check_rel(rel: str) -> str:
    """A relative POSIX path inside the workspace: no empty, '.', '..' or absolute parts."""
    if not isinstance(rel, str) or "\x00" in rel or "\\" in rel:
        raise WorkspaceError(f"invalid workspace path {rel!r}")
    if rel in ("", "."):
        return ""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise WorkspaceError(f"invalid workspace path {rel!r}: no empty, '.' or '..' parts")
    return rel


def _tmp_name() -> str:
    return f".tmp-{secrets.token_hex(8)}"


CHUNK = 4 * 2**20


def _chunks(local_path: str):
    with open(local_path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


# link(2) failures that mean "no hard links on this filesystem", not "the name is taken".
NO_HARDLINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK)


def _create(path: str, fill) -> None:
    """Create `path` exclusively (O_CREAT|O_EXCL) with what `fill(file)` writes, fsync'd."""
    with open(path, "xb") as f:
        fill(f)
        f.flush()
        os.fsync(f.fileno())


def _bytes(data: bytes):
    return lambda f: f.write(data)


def published_mode(local_path: str) -> int:
    """Permissions for an uploaded copy: the source's (a 0640 file stays 0640), never group/other-writable,
    since nobody may change a file after it is published."""
    return stat_mod.S_IMODE(os.stat(local_path).st_mode) & 0o755


def _copy_of(local_path: str, progress=None):
    """A `fill` that copies a local file (and its published mode); `progress(n)` after each chunk."""

    def fill(f):
        for chunk in _chunks(local_path):
            f.write(chunk)
            if progress is not None:
                progress(len(chunk))
        os.fchmod(f.fileno(), published_mode(local_path))

    return fill


def _sha256_of(chunks) -> tuple[int, str]:
    size, h = 0, hashlib.sha256()
    for chunk in chunks:
        size += len(chunk)
        h.update(chunk)
    return size, h.hexdigest()


def _local_write_new(path: str, fill, taken: str) -> None:
    """Create local `path`, never replacing anything and never showing a partial file: a temp file beside it
    is hard-linked to the name (link(2) fails if the name exists), then removed. Where the filesystem has no
    hard links, `path` is created O_EXCL in place (still exclusive, briefly partial). AlreadyExists(taken)
    if the name is taken; other failures raise OSError."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), _tmp_name())
    try:
        _create(tmp, fill)
        try:
            os.link(tmp, path)
        except OSError as exc:
            if isinstance(exc, FileExistsError) or exc.errno not in NO_HARDLINKS:
                raise
            _create(path, _copy_of(tmp))
    except FileExistsError:
        raise AlreadyExists(taken) from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _save_local(local_path: str, fill) -> None:
    """A downloaded file, written to `local_path`, which must not exist (local files are never overwritten)."""
    try:
        _local_write_new(local_path, fill, f"{local_path} already exists locally (it is never overwritten)")
    except OSError as exc:
        raise WorkspaceError(f"cannot write {local_path}: {exc}") from None


class Store:
    """A workspace root on some backend. Subclasses implement the primitives below."""

    def __init__(self, url: str):
        self.url = url
        self.display = redact_url(url)

    # -- primitives --------------------------------------------------------------------------
    def write_new(self, rel: str, data: bytes) -> None:
        """Create `rel` with `data`; AlreadyExists if the name is taken. Parents must exist (see makedirs)."""
        raise NotImplementedError

    def write_new_from_file(self, rel: str, local_path: str, progress=None) -> None:
        """`write_new` with the bytes of a local file (local and SFTP stream it and give it the file's
        `published_mode`; object stores read it whole and have no modes). `progress(n)`: n more bytes sent."""
        with open(local_path, "rb") as f:
            data = f.read()
        self.write_new(rel, data)
        if progress is not None:
            progress(len(data))

    def digest(self, rel: str) -> tuple[int, str]:
        """(size, SHA-256 hex) of a workspace file, streamed (for `artifacts sync`)."""
        return _sha256_of([self.read(rel, limit=2**62)])

    def remove(self, rel: str) -> None:
        """Delete a file or a folder with everything in it (only `artifacts rm`, of one's own artifact)."""
        raise NotImplementedError

    def download(self, rel: str, local_path: str) -> None:
        """Copy a workspace file to `local_path`, which must not exist (it is never overwritten)."""
        data = self.read(rel, limit=2**62)
        _save_local(local_path, _bytes(data))

    def replace(self, rel: str, data: bytes) -> None:
        """Atomically replace `rel` (only for derived files: LEADERBOARD.md)."""
        raise NotImplementedError

    def read(self, rel: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        raise NotImplementedError

    def read_many(self, rels: list[str], limit: int = DEFAULT_READ_LIMIT) -> list[bytes | Exception]:
        out: list[bytes | Exception] = []
        for rel in rels:
            try:
                out.append(self.read(rel, limit))
            except WorkspaceError as exc:
                out.append(exc)
        return out

    def listdir(self, rel: str) -> list[Entry]:
        """Entries of a directory, hidden names (temp files, markers) left out; NotFound if missing."""
        raise NotImplementedError

    def stat(self, rel: str) -> Entry | None:
        raise NotImplementedError

    def mkdir_new(self, rel: str) -> None:
        """Claim a new directory; AlreadyExists if the name is taken (by a file or a directory)."""
        raise NotImplementedError

    def makedirs(self, rel: str) -> None:
        """Create a directory and its parents if missing (safe under concurrency)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- helpers -------------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return self.stat(rel) is not None

    def walk_files(self, rel: str) -> list[tuple[str, int | None]]:
        """Every file under `rel` (recursively), as (relative path, size), sorted."""
        out = []
        stack = [_check_rel(rel)]
        while stack:
            d = stack.pop()
            for e in self.listdir(d):
                path = f"{d}/{e.name}" if d else e.name
                if e.kind == "dir":
                    stack.append(path)
                elif e.kind == "file":
                    out.append((path, e.size))
        return sorted(out)

    def _fail(self, action: str, rel: str, exc: BaseException) -> WorkspaceError:
        detail = " ".join(scrub(f"{type(exc).__name__}: {exc}", self.url).split())
        return WorkspaceError(f"{self.display}: cannot {action} {rel or '.'}: {detail}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- local ----------------------------------------------------------------------------------


class LocalStore(Store):
    def __init__(self, url: str, root: str):
        super().__init__(url)
        self.root = root

    def _abs(self, rel: str) -> str:
        rel = _check_rel(rel)
        return os.path.join(self.root, *rel.split("/")) if rel else self.root

    def write_new(self, rel: str, data: bytes) -> None:
        self._write_new(rel, _bytes(data))

    def write_new_from_file(self, rel: str, local_path: str, progress=None) -> None:
        self._write_new(rel, _copy_of(local_path, progress))

    def digest(self, rel: str) -> tuple[int, str]:
        fd, _ = self._open_regular(rel)
        with os.fdopen(fd, "rb") as f:
            return _sha256_of(iter(lambda: f.read(CHUNK), b""))

    def remove(self, rel: str) -> None:
        path = self._confined(rel)
        hidden = os.path.join(os.path.dirname(path), _tmp_name())
        try:
            os.rename(path, hidden)  # gone from every listing at once; then deleted at leisure
        except FileNotFoundError:
            raise NotFound(f"{rel}: no such file or folder in the workspace") from None
        except OSError as exc:
            raise self._fail("remove", rel, exc) from None
        try:
            if os.path.isdir(hidden) and not os.path.islink(hidden):
                shutil.rmtree(hidden)
            else:
                os.unlink(hidden)
        except OSError as exc:
            raise self._fail("remove", rel, exc) from None

    def _confined(self, rel: str) -> str:
        """The absolute path of `rel` for writing, refused if a symlink leads it outside the workspace."""
        path, root = self._abs(rel), os.path.realpath(self.root)
        real = os.path.realpath(path)
        if real != root and not real.startswith(root + os.sep):
            raise WorkspaceError(f"{rel}: leads outside the workspace (through a symlink): refused")
        return path

    def _write_new(self, rel: str, fill) -> None:
        taken = f"{rel} already exists in the workspace (files are never overwritten)"
        try:
            _local_write_new(self._confined(rel), fill, taken)
        except OSError as exc:
            raise self._fail("write", rel, exc) from None

    def _open_regular(self, rel: str) -> tuple[int, os.stat_result]:
        """An fd on a regular file. O_NOFOLLOW: a planted symlink is not followed; O_NONBLOCK: a planted
        FIFO can't hang us (and fstat then refuses it)."""
        try:
            fd = os.open(self._abs(rel), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise NotFound(f"{rel}: no such file in the workspace") from None
        except OSError as exc:
            raise self._fail("read", rel, exc) from None
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            os.close(fd)
            raise WorkspaceError(f"{rel}: not a regular file")
        return fd, st

    def download(self, rel: str, local_path: str) -> None:
        fd, _ = self._open_regular(rel)
        with os.fdopen(fd, "rb") as src:
            _save_local(local_path, lambda f: shutil.copyfileobj(src, f, CHUNK))

    def replace(self, rel: str, data: bytes) -> None:
        path = self._confined(rel)
        tmp = os.path.join(os.path.dirname(path), _tmp_name())
        try:
            _create(tmp, _bytes(data))
            os.replace(tmp, path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise self._fail("write", rel, exc) from None

    def read(self, rel: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        fd, st = self._open_regular(rel)
        try:
            if st.st_size > limit:
                raise TooLarge(f"{rel}: {st.st_size} bytes, over the {limit}-byte limit")
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(limit + 1)
            if len(data) > limit:
                raise TooLarge(f"{rel}: over the {limit}-byte limit")
            return data
        except OSError as exc:
            raise self._fail("read", rel, exc) from None
        finally:
            os.close(fd)

    def listdir(self, rel: str) -> list[Entry]:
        path = self._abs(rel)
        try:
            with os.scandir(path) as it:
                out = []
                for e in it:
                    if e.name.startswith("."):
                        continue
                    if e.is_dir(follow_symlinks=False):
                        out.append(Entry(e.name, "dir", None, e.stat(follow_symlinks=False).st_mtime))
                    elif e.is_file(follow_symlinks=False):
                        st = e.stat(follow_symlinks=False)
                        out.append(Entry(e.name, "file", st.st_size, st.st_mtime))
                    else:
                        out.append(Entry(e.name, "other"))
                return out
        except FileNotFoundError:
            raise NotFound(f"{rel or '.'}: no such directory in the workspace {self.display}") from None
        except NotADirectoryError:
            raise WorkspaceError(f"{rel}: not a directory") from None
        except OSError as exc:
            raise self._fail("list", rel, exc) from None

    def stat(self, rel: str) -> Entry | None:
        try:
            st = os.lstat(self._abs(rel))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail("stat", rel, exc) from None
        name = posixpath.basename(rel)
        if stat_mod.S_ISDIR(st.st_mode):
            return Entry(name, "dir", None, st.st_mtime)
        if stat_mod.S_ISREG(st.st_mode):
            return Entry(name, "file", st.st_size, st.st_mtime)
        return Entry(name, "other", None, st.st_mtime)

    def mkdir_new(self, rel: str) -> None:
        try:
            os.mkdir(self._confined(rel))
        except FileExistsError:
            raise AlreadyExists(f"{rel} already exists in the workspace (files are never overwritten)") from None
        except OSError as exc:
            raise self._fail("create directory", rel, exc) from None

    def makedirs(self, rel: str) -> None:
        try:
            os.makedirs(self._confined(rel), exist_ok=True)
        except OSError as exc:
            raise self._fail("create directory", rel, exc) from None


# --- sftp -----------------------------------------------------------------------------------


def _sftp_entry(name: str, attrs) -> Entry:
    mode, mtime = attrs.permissions or 0, attrs.mtime
    if stat_mod.S_ISDIR(mode):
        return Entry(name, "dir", None, mtime)
    if stat_mod.S_ISREG(mode):
        return Entry(name, "file", attrs.size, mtime)
    return Entry(name, "other", None, mtime)


class SFTPStore(Store):
    def __init__(self, url: str, fs, root: str):
        super().__init__(url)
        from fsspec.asyn import sync

        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self._sync = lambda coro_fn, *a: sync(fs.loop, coro_fn, *a)
        try:
            self.sftp = self._sync(fs.client.start_sftp_client)
        except Exception as exc:  # noqa: BLE001 — any connection failure is the user's to fix
            raise self._fail("start SFTP on", "", exc) from None

    def _abs(self, rel: str) -> str:
        rel = _check_rel(rel)
        return posixpath.join(self.root, rel) if rel else self.root

    def _call(self, action: str, rel: str, coro_fn, *args):
        import asyncssh

        try:
            return self._sync(coro_fn, *args)
        except (AlreadyExists, NotFound, WorkspaceError):
            raise
        except asyncssh.SFTPNoSuchFile:
            raise NotFound(f"{rel or '.'}: not found in the workspace {self.display}") from None
        except (asyncssh.Error, OSError) as exc:
            raise self._fail(action, rel, exc) from None

    async def _type(self, path: str) -> str | None:
        import asyncssh

        try:
            attrs = await self.sftp.lstat(path)
        except asyncssh.SFTPNoSuchFile:
            return None
        mode = attrs.permissions or 0
        return "dir" if stat_mod.S_ISDIR(mode) else "file" if stat_mod.S_ISREG(mode) else "other"

    async def _entry(self, path: str) -> Entry | None:
        import asyncssh

        try:
            attrs = await self.sftp.lstat(path)
        except asyncssh.SFTPNoSuchFile:
            return None
        return _sftp_entry(posixpath.basename(path), attrs)

    async def _write_new(self, rel: str, source: bytes | str, progress=None) -> None:
        import asyncssh

        path = self._abs(rel)
        tmp = posixpath.join(posixpath.dirname(path), _tmp_name())
        try:
            async with self.sftp.open(tmp, "xb") as f:  # SSH_FXF_WRITE|SSH_FXF_CREAT|SSH_FXF_EXCL
                if isinstance(source, (bytes, bytearray, memoryview)):
                    await f.write(bytes(source))
                else:
                    for chunk in _chunks(source):
                        await f.write(chunk)
                        if progress is not None:
                            progress(len(chunk))
                    await f.chmod(published_mode(source))
            try:
                await self.sftp.link(tmp, path)  # hardlink@openssh.com: link(2) on the server
            except asyncssh.SFTPOpUnsupported:
                await self.sftp.rename(tmp, path)  # SSH_FXP_RENAME: must fail if the target exists
        except asyncssh.SFTPError:
            if await self._type(path) is not None:
                raise AlreadyExists(f"{rel} already exists in the workspace (files are never overwritten)") from None
            raise
        finally:
            try:
                await self.sftp.remove(tmp)
            except asyncssh.SFTPError:
                pass  # gone already (renamed)

    def write_new(self, rel: str, data: bytes) -> None:
        self._call("write", rel, self._write_new, rel, data)

    def write_new_from_file(self, rel: str, local_path: str, progress=None) -> None:
        self._call("write", rel, self._write_new, rel, local_path, progress)

    def digest(self, rel: str) -> tuple[int, str]:
        async def run():
            size, h = 0, hashlib.sha256()
            async with self.sftp.open(self._abs(rel), "rb") as src:
                attrs = await src.stat()
                if not stat_mod.S_ISREG(attrs.permissions or 0):
                    raise WorkspaceError(f"{rel}: not a regular file")
                while chunk := await src.read(CHUNK):
                    size += len(chunk)
                    h.update(chunk)
            return size, h.hexdigest()

        return self._call("read", rel, run)

    async def _remove(self, rel: str) -> None:
        path = self._abs(rel)
        hidden = posixpath.join(posixpath.dirname(path), _tmp_name())
        await self.sftp.rename(path, hidden)  # plain SFTP rename: gone from listings at once
        if await self._type(hidden) == "dir":
            await self.sftp.rmtree(hidden)
        else:
            await self.sftp.remove(hidden)

    def remove(self, rel: str) -> None:
        self._call("remove", rel, self._remove, rel)

    def download(self, rel: str, local_path: str) -> None:
        async def fetch(f):
            async with self.sftp.open(self._abs(rel), "rb") as src:
                attrs = await src.stat()
                if not stat_mod.S_ISREG(attrs.permissions or 0):
                    raise WorkspaceError(f"{rel}: not a regular file")
                while chunk := await src.read(CHUNK):
                    f.write(chunk)

        _save_local(local_path, lambda f: self._call("read", rel, fetch, f))

    async def _replace(self, rel: str, data: bytes) -> None:
        import asyncssh

        path = self._abs(rel)
        tmp = posixpath.join(posixpath.dirname(path), _tmp_name())
        async with self.sftp.open(tmp, "xb") as f:
            await f.write(data)
        try:
            await self.sftp.posix_rename(tmp, path)  # atomic replace; only ever for LEADERBOARD.md
        except asyncssh.SFTPOpUnsupported:
            try:
                await self.sftp.remove(path)
            except asyncssh.SFTPNoSuchFile:
                pass
            await self.sftp.rename(tmp, path)
        except BaseException:
            try:
                await self.sftp.remove(tmp)
            except asyncssh.SFTPError:
                pass
            raise

    def replace(self, rel: str, data: bytes) -> None:
        self._call("write", rel, self._replace, rel, data)

    async def _read(self, rel: str, limit: int) -> bytes:
        async with self.sftp.open(self._abs(rel), "rb") as f:
            attrs = await f.stat()
            if not stat_mod.S_ISREG(attrs.permissions or 0):
                raise WorkspaceError(f"{rel}: not a regular file")
            if attrs.size is not None and attrs.size > limit:
                raise TooLarge(f"{rel}: {attrs.size} bytes, over the {limit}-byte limit")
            data = await f.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"{rel}: over the {limit}-byte limit")
        return data

    def read(self, rel: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        return self._call("read", rel, self._read, rel, limit)

    def read_many(self, rels: list[str], limit: int = DEFAULT_READ_LIMIT) -> list[bytes | Exception]:
        import asyncssh

        async def one(rel, sem):
            async with sem:
                try:
                    return await self._read(rel, limit)
                except WorkspaceError as exc:
                    return exc
                except asyncssh.SFTPNoSuchFile:
                    return NotFound(f"{rel}: no such file in the workspace")
                except (asyncssh.Error, OSError) as exc:
                    return self._fail("read", rel, exc)

        async def all_():
            sem = asyncio.Semaphore(64)  # pipelined on one channel; bounded so huge boards don't flood
            return await asyncio.gather(*(one(r, sem) for r in rels))

        return self._call("read", "", all_)

    async def _listdir(self, rel: str) -> list[Entry]:
        out = []
        for n in await self.sftp.readdir(self._abs(rel)):
            name = n.filename if isinstance(n.filename, str) else n.filename.decode("utf-8", "replace")
            if name.startswith("."):
                continue
            out.append(_sftp_entry(name, n.attrs))
        return out

    def listdir(self, rel: str) -> list[Entry]:
        return self._call("list", rel, self._listdir, rel)

    def stat(self, rel: str) -> Entry | None:
        return self._call("stat", rel, self._entry, self._abs(rel))

    async def _mkdir_new(self, rel: str) -> None:
        import asyncssh

        path = self._abs(rel)
        try:
            await self.sftp.mkdir(path)  # SSH_FXP_MKDIR: mkdir(2), fails if the name exists
        except asyncssh.SFTPError:
            if await self._type(path) is not None:
                raise AlreadyExists(f"{rel} already exists in the workspace (files are never overwritten)") from None
            raise

    def mkdir_new(self, rel: str) -> None:
        self._call("create directory", rel, self._mkdir_new, rel)

    def makedirs(self, rel: str) -> None:
        self._call("create directory", rel, lambda: self.sftp.makedirs(self._abs(rel), exist_ok=True))

    def close(self) -> None:
        sftp, self.sftp = self.sftp, None
        if sftp is not None:

            async def _close():
                sftp.exit()
                await sftp.wait_closed()
                client = self.fs.client
                client.close()
                await client.wait_closed()

            try:
                self._sync(_close)
            except Exception:  # noqa: BLE001 — closing a dead channel is not an error
                pass


# --- object stores (s3, hf buckets) -----------------------------------------------------------


def _info_mtime(info: dict) -> float | None:
    """The modification time in an fsspec info dict (s3fs: LastModified; others: mtime), if any."""
    for key in ("LastModified", "last_modified", "mtime"):
        value = info.get(key)
        if hasattr(value, "timestamp"):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
    return None


class ObjectStore(Store):
    """Flat key/value stores: no real directories (a `.dir` marker claims one), listing by prefix."""

    def __init__(self, url: str, fs, root: str):
        super().__init__(url)
        self.fs = fs
        self.root = root.rstrip("/")

    def _abs(self, rel: str) -> str:
        rel = _check_rel(rel)
        return f"{self.root}/{rel}" if rel else self.root

    def _guard(self, action: str, rel: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (AlreadyExists, NotFound, WorkspaceError):
            raise
        except FileNotFoundError:
            raise NotFound(f"{rel or '.'}: not found in the workspace {self.display}") from None
        except Exception as exc:  # noqa: BLE001 — credentials, network: the user's to fix
            raise self._fail(action, rel, exc) from None

    def replace(self, rel: str, data: bytes) -> None:
        self._guard("write", rel, self.fs.pipe_file, self._abs(rel), data)

    def remove(self, rel: str) -> None:
        if self._guard("stat", rel, self.fs.isdir, self._abs(rel)):
            for marker in (".manifest.json", ".dir"):  # no rename here: first make it incomplete, then delete
                try:
                    self._guard("remove", rel, self.fs.rm_file, f"{self._abs(rel)}/{marker}")
                except NotFound:
                    pass
            self._guard("remove", rel, self.fs.rm, self._abs(rel), recursive=True)
        else:
            self._guard("remove", rel, self.fs.rm_file, self._abs(rel))

    def read(self, rel: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        data = self._guard("read", rel, self.fs.cat_file, self._abs(rel), start=0, end=limit + 1)
        if len(data) > limit:
            raise TooLarge(f"{rel}: over the {limit}-byte limit")
        return data

    def listdir(self, rel: str) -> list[Entry]:
        infos = self._guard("list", rel, self.fs.ls, self._abs(rel), detail=True, refresh=True)
        out = []
        for info in infos:
            name = posixpath.basename(info["name"].rstrip("/"))
            if not name or name.startswith("."):
                continue
            kind = {"directory": "dir", "file": "file"}.get(info.get("type"), "other")
            out.append(Entry(name, kind, info.get("size") if kind == "file" else None, _info_mtime(info)))
        return out

    def stat(self, rel: str) -> Entry | None:
        try:
            info = self._guard("stat", rel, self.fs.info, self._abs(rel))
        except NotFound:
            return None
        kind = {"directory": "dir", "file": "file"}.get(info.get("type"), "other")
        return Entry(posixpath.basename(rel), kind, info.get("size"), _info_mtime(info))

    def mkdir_new(self, rel: str) -> None:
        self.write_new(f"{rel}/.dir", b"")

    def makedirs(self, rel: str) -> None:
        pass  # prefixes need no creation


class S3Store(ObjectStore):
    def write_new(self, rel: str, data: bytes) -> None:
        bucket, _, key = self._abs(rel).partition("/")
        try:
            self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except Exception as exc:  # noqa: BLE001
            cause = exc.__cause__ if exc.__cause__ is not None else exc  # s3fs wraps botocore's ClientError
            code = getattr(cause, "response", {}).get("Error", {}).get("Code")
            if code == "PreconditionFailed" or "PreconditionFailed" in str(exc):
                raise AlreadyExists(f"{rel} already exists in the workspace (files are never overwritten)") from None
            raise self._fail("write", rel, exc) from None
        self.fs.invalidate_cache(self._abs(rel))


class HFBucketStore(ObjectStore):
    def write_new(self, rel: str, data: bytes) -> None:
        if self.exists(rel):
            raise AlreadyExists(f"{rel} already exists in the workspace (files are never overwritten)")
        self._guard("write", rel, self.fs.pipe_file, self._abs(rel), data)


# --- opening --------------------------------------------------------------------------------

SCHEMES = ("file", "sftp", "ssh", "s3", "hf")


def _scheme(url: str) -> str:
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower()


def open_store(url: str, **options) -> Store:
    """The workspace at `url` (a path, file://, sftp://, s3://, hf://buckets/OWNER/NAME).

    `options` go to the fsspec filesystem (for sftp: asyncssh.connect options such as `client_keys`,
    `known_hosts`). Credentials come from where each library looks by default (~/.ssh, ssh-agent,
    ~/.ssh/config; AWS env/config files; the saved HF token); they are never printed or written.
    """
    if not url:
        raise WorkspaceError("no workspace URL")
    scheme = _scheme(url)
    display = redact_url(url)
    if scheme not in SCHEMES:
        raise WorkspaceError(
            f"{display}: unsupported workspace URL scheme {scheme!r} "
            "(use a path, file://, sftp://, s3:// or hf://buckets/OWNER/NAME)"
        )
    import fsspec

    if scheme == "hf" and not url.split("://", 1)[1].startswith("buckets/"):
        raise WorkspaceError(f"{display}: hf:// workspaces must be buckets: hf://buckets/OWNER/NAME")
    if scheme in ("sftp", "ssh"):
        # asyncssh's defaults: keys from ~/.ssh and the agent, ~/.ssh/config, and host keys checked
        # against ~/.ssh/known_hosts (sshfs would otherwise turn host-key checking off).
        options.setdefault("known_hosts", ())
        options.setdefault("connect_timeout", 30)
        options.setdefault("skip_instance_cache", True)  # one connection per store, closed with it
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        need = {"s3": "s3fs"}.get(scheme, str(exc))
        raise WorkspaceError(
            f"{display}: {scheme}:// workspaces need the {need} package "
            f"(uv add {need}); credentials then come from the usual environment "
            "variables and config files"
        ) from None
    except Exception as exc:  # noqa: BLE001 — connection, host key, auth: all the user's to fix
        detail = " ".join(scrub(f"{type(exc).__name__}: {exc}", url).split())
        hint = ""
        if "HostKeyNotVerifiable" in detail or "Host key is not trusted" in detail:
            hint = " (add the server's key to ~/.ssh/known_hosts, e.g. ssh-keyscan -p PORT HOST >> ~/.ssh/known_hosts)"
        raise WorkspaceError(f"{display}: cannot open workspace: {detail}{hint}") from None
    if scheme == "file":
        return LocalStore(url, os.path.abspath(root))
    if scheme in ("sftp", "ssh"):
        if not root.startswith("/"):
            root = "/" + root if root else "."
        return SFTPStore(url, fs, root)
    if scheme == "s3":
        return S3Store(url, fs, root)
    return HFBucketStore(url, fs, root)


def write_unique(store: Store, make, tries: int = 8):
    """Write a file whose name ends in a random suffix, without coordination between writers:
    `make(suffix)` returns (path, data, result). A taken name (a 1-in-4-billion clash, or a caller's fixed
    time) retries with a new suffix. Returns `result` of the write that landed."""
    for _ in range(tries):
        path, data, result = make(secrets.token_hex(4))
        try:
            store.write_new(path, data)
            return result
        except AlreadyExists:
            continue
    raise WorkspaceError(f"could not find a free name for {path} after {tries} tries")
