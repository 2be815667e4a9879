"""Collaborative workspace: a message board, artifacts and a shared LEADERBOARD.md for many agents.

No database, no locks, no version control: one bucket (a local folder, `sftp://`, `s3://` or
`hf://buckets/OWNER/NAME`) and naming conventions, enforced here:

* every file carries its author's agent id (`[a-z0-9][a-z0-9_-]{0,63}`) in its name or path;
* no file is ever overwritten: every write is create-exclusive on the backend (`store.py`), and unique
  names (UTC timestamp + agent + random suffix) keep concurrent writers from colliding at all;
* `LEADERBOARD.md` is the one exception: it is derived from every agent's results and regenerated
  (atomically replaced) by whoever publishes.
* the one deletion is `gsm8k artifacts rm`, of one's own artifact (another agent's is refused).

Modules: `store` (backends), `layout` (`workspace init`), `board`, `artifacts`, `sync` (`artifacts sync`),
`publish`, `cli`.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

from .. import PipelineError

AGENT_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
KINDS = ("scripts", "results", "checkpoints", "data")
MESSAGE_TYPES = ("status-update", "experiment-proposal", "result", "claim", "question")
ENV_WORKSPACE = "GSM8K_WORKSPACE"
ENV_AGENT_ID = "GSM8K_AGENT_ID"
# UTC times: in file names (sortable, no ':') and inside files (ISO 8601).
NAME_TIME = "%Y%m%dT%H%M%S.%fZ"
ISO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


class WorkspaceError(PipelineError):
    """A workspace problem the user can fix; the message never contains credentials."""


class AlreadyExists(WorkspaceError):
    """The name is taken: nothing was written (no file is ever overwritten)."""


class NotFound(WorkspaceError):
    """No such file or directory in the workspace."""


def validate_agent_id(agent_id: str | None) -> str:
    """The agent id itself, or a WorkspaceError saying why it is refused (before anything is written)."""
    if agent_id is None or agent_id == "":
        raise WorkspaceError(
            f"no agent id: pass --agent-id ID or set {ENV_AGENT_ID} "
            "(lower-case letters, digits, '_' and '-', 1-64 characters, starting with a letter or digit)"
        )
    if not isinstance(agent_id, str) or not AGENT_ID_RE.fullmatch(agent_id):
        shown = printable(str(agent_id), 80)
        raise WorkspaceError(
            f"invalid agent id {shown!r}: it must match [a-z0-9][a-z0-9_-]{{0,63}} "
            "(lower-case ASCII letters, digits, '_' and '-', at most 64 characters, "
            "starting with a letter or digit)"
        )
    return agent_id


def printable(text: str, limit: int | None = None, keep_newlines: bool = False) -> str:
    """`text` without control characters (terminal escapes etc.), for output of others' content."""
    keep = "\n\t" if keep_newlines else ""
    out = "".join(
        ch
        if (ch in keep or (ch.isprintable() and unicodedata.category(ch) != "Cf"))
        else (" " if ch in "\r\n\t" else "\ufffd")
        for ch in text
    )
    if limit is not None and len(out) > limit:
        out = out[: limit - 1] + "…"
    return out


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for every message and output."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}{port}").geturl()


def url_secrets(url: str) -> list[str]:
    """The secrets a URL carries (its password, raw and decoded), to scrub from error messages."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    if not password:
        return []
    return sorted({password, unquote(password)}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text
