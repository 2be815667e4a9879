"""Wheels built at test time and served from a local folder, as a package index would serve them (uv reads
UV_FIND_LINKS; UV_NO_INDEX keeps it off the real index): for the pypi: model source's error paths and
chunked packages, without publishing anything."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build(folder: Path, name: str, version: str, files: dict[str, bytes], requires: list[str] = ()) -> Path:
    """A py3-none-any wheel of `files` (path in the wheel -> bytes), with `requires` as Requires-Dist."""
    dist = f"{name.replace('-', '_')}-{version}"
    meta = "".join(
        [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", *(f"Requires-Dist: {r}\n" for r in requires)]
    ).encode()
    contents = {
        **files,
        f"{dist}.dist-info/METADATA": meta,
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in contents.items())
    record += f"{dist}.dist-info/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, data in contents.items():
            z.writestr(path, data)
        z.writestr(f"{dist}.dist-info/RECORD", record)
    return wheel


def index_env(folder: Path) -> dict[str, str]:
    """Environment under which uv finds packages in `folder` and nowhere else."""
    return {"UV_FIND_LINKS": str(folder), "UV_NO_INDEX": "1"}
