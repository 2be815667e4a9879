"""The message board: one Markdown file with YAML front matter per message, never edited, never replaced.

File name (= message id + ".md"), every field fixed-format so it sorts by time and parses unambiguously:

    message_board/20250102T030405.123456Z.alice.experiment-proposal.lora-r16-on-grpo.3f9a1c2b.md
                  UTC timestamp (µs)      agent  type                short slug       random suffix

Agent ids, types and slugs contain no ".", so the "." separators are unambiguous. The timestamp and
the 32-bit random suffix make names unique without coordination; `write_new` (create-exclusive) is the
guard, and a post whose name is somehow taken retries with a new suffix.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import yaml

from . import ISO_TIME, MESSAGE_TYPES, NAME_TIME, NotFound, WorkspaceError, printable, validate_agent_id
from .store import Store, write_unique

BOARD = "message_board"
MAX_TITLE = 200
MAX_BODY = 1 * 2**20
MAX_FRONT_MATTER = 4 * 2**10  # ours is a few flat keys; a cap also bounds YAML nesting (libyaml recurses)
MAX_FILE = MAX_BODY + MAX_FRONT_MATTER + 16
_TYPES = "|".join(re.escape(t) for t in MESSAGE_TYPES)
ID_RE = re.compile(
    r"(?P<ts>[0-9]{8}T[0-9]{6}\.[0-9]{6}Z)\.(?P<agent>[a-z0-9][a-z0-9_-]{0,63})\.(?P<type>" + _TYPES + r")"
    r"\.(?P<slug>[a-z0-9][a-z0-9-]{0,47})\.(?P<suffix>[0-9a-f]{8})"
)


@dataclass
class Message:
    id: str
    agent_id: str
    type: str
    title: str
    created: str
    reply_to: str | None = None
    body: str = field(default="", repr=False)

    @property
    def path(self) -> str:
        return f"{BOARD}/{self.id}.md"

    def as_dict(self, body: bool = False) -> dict:
        d = asdict(self)
        if not body:
            d.pop("body")
        d["path"] = self.path
        return d


@dataclass
class Listing:
    messages: list[Message]
    warnings: list[str]


def slugify(title: str, limit: int = 40) -> str:
    ascii_ = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_).strip("-")[:limit].strip("-")
    return slug or "message"


def match_id(text: str) -> re.Match | None:
    """The parts of a message id, or None: the pattern, and a timestamp that is a real UTC time."""
    m = ID_RE.fullmatch(text)
    if m is None:
        return None
    try:
        datetime.strptime(m["ts"], NAME_TIME)
    except ValueError:  # e.g. month 13: a hand-made name
        return None
    return m


def _ts_of(message_id: str) -> datetime:
    """The time in a message id that `match_id` accepted."""
    return datetime.strptime(message_id[:23], NAME_TIME).replace(tzinfo=UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime(ISO_TIME)


def normalize_id(message: str) -> str:
    """A message id from an id, a file name or a board path; WorkspaceError if it can't be one."""
    text = (message or "").strip()
    if text.startswith(BOARD + "/"):
        text = text[len(BOARD) + 1 :]
    if text.endswith(".md"):
        text = text[:-3]
    if not match_id(text):
        raise WorkspaceError(
            f"{printable(message or '', 120)!r} is not a message id "
            "(copy one from `gsm8k board list`, e.g. 20250102T030405.123456Z.alice.question.why.3f9a1c2b)"
        )
    return text


def _check_title(title: str) -> str:
    if not isinstance(title, str) or not title.strip():
        raise WorkspaceError("the title is empty")
    if len(title) > MAX_TITLE:
        raise WorkspaceError(f"the title has {len(title)} characters (at most {MAX_TITLE})")
    if printable(title) != title:
        raise WorkspaceError("the title must be one line without control characters")
    return title.strip()


def render(msg: Message) -> str:
    front = {"id": msg.id, "agent_id": msg.agent_id, "type": msg.type, "title": msg.title, "created": msg.created}
    if msg.reply_to:
        front["reply_to"] = msg.reply_to
    body = msg.body if msg.body.endswith("\n") or not msg.body else msg.body + "\n"
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=10**6) + "---\n\n" + body


def post(
    store: Store,
    agent_id: str,
    type: str,
    title: str,
    body: str,
    reply_to: str | None = None,
    now: datetime | None = None,
) -> Message:
    """Write one new message; returns it (its `id` names the file)."""
    agent_id = validate_agent_id(agent_id)
    if type not in MESSAGE_TYPES:
        raise WorkspaceError(f"unknown message type {printable(str(type), 40)!r} (one of: {', '.join(MESSAGE_TYPES)})")
    title = _check_title(title)
    if not isinstance(body, str):
        raise WorkspaceError("the body must be text")
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raise WorkspaceError("the body is not valid UTF-8 text") from None
    if size > MAX_BODY:
        raise WorkspaceError(f"the body is over {MAX_BODY} bytes: put big content in artifacts/ and link it")
    if "\x00" in body:
        raise WorkspaceError("the body contains NUL characters")
    if reply_to is not None:
        reply_to = normalize_id(reply_to)
        if not store.exists(f"{BOARD}/{reply_to}.md"):
            raise NotFound(f"--reply-to {reply_to}: no such message on the board")
    slug = slugify(title)

    def message(suffix: str):
        when = now or datetime.now(UTC)
        msg = Message(
            f"{when.strftime(NAME_TIME)}.{agent_id}.{type}.{slug}.{suffix}",
            agent_id,
            type,
            title,
            _iso(when),
            reply_to,
            body,
        )
        return msg.path, render(msg).encode("utf-8"), msg

    return write_unique(store, message)


class Malformed(ValueError):
    pass


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(message_id: str, data: bytes) -> Message:
    """A message file's contents, checked against its name; Malformed says what is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("not UTF-8") from None
    if not text.startswith("---\n"):
        raise Malformed("no YAML front matter")
    end = text.find("\n---\n", 3)
    if end < 0 or end > MAX_FRONT_MATTER:
        raise Malformed(f"front matter not closed by '---' within {MAX_FRONT_MATTER} bytes")
    try:
        front = yaml.load(text[4 : end + 1], Loader=_Loader)  # noqa: S506 — a safe loader
    except (yaml.YAMLError, RecursionError):
        raise Malformed("front matter is not valid YAML") from None
    if not isinstance(front, dict):
        raise Malformed("front matter is not a mapping")
    name = match_id(message_id)
    for key, expected in (("id", message_id), ("agent_id", name["agent"]), ("type", name["type"])):
        if front.get(key) != expected:
            raise Malformed(f"front matter {key!r} does not match the file name")
    title, created, reply_to = front.get("title"), front.get("created"), front.get("reply_to")
    if not isinstance(title, str) or not title or len(title) > 4 * MAX_TITLE:
        raise Malformed("missing or invalid title")
    if not isinstance(created, str) or len(created) > 64:
        created = _iso(_ts_of(message_id))
    if reply_to is not None and not (isinstance(reply_to, str) and match_id(reply_to)):
        raise Malformed("invalid reply_to")
    body = text[end + 5 :]
    if body.startswith("\n"):
        body = body[1:]
    return Message(message_id, name["agent"], name["type"], title, created, reply_to, body)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """'30m', '2h', '3d', '1w' ago, or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text or "")
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m[2]]
        try:
            return now - timedelta(**{unit: int(m[1])})
        except OverflowError:
            raise WorkspaceError(f"--since {text.strip()}: too long ago") from None
    try:
        dt = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise WorkspaceError(
            f"--since {printable(str(text), 60)!r}: use an ISO date/time "
            "(2025-01-31, 2025-01-31T12:00Z) or an age (30m, 2h, 3d, 1w)"
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def list_messages(
    store: Store, type: str | None = None, agent: str | None = None, since: datetime | None = None
) -> Listing:
    """Every readable message (oldest first), filtered; unreadable or foreign files become warnings."""
    if type is not None and type not in MESSAGE_TYPES:
        raise WorkspaceError(f"unknown message type {printable(type, 40)!r} (one of: {', '.join(MESSAGE_TYPES)})")
    if agent is not None:
        validate_agent_id(agent)
    warnings: list[str] = []
    ids = []
    for e in store.listdir(BOARD):
        stem = e.name[:-3] if e.name.endswith(".md") else None
        match = match_id(stem) if stem else None
        if match is None or e.kind != "file":
            if e.name != "README.md":
                warnings.append(f"{BOARD}/{printable(e.name, 120)}: not a message file, ignored")
            continue
        if type and match["type"] != type or agent and match["agent"] != agent:
            continue
        if since and _ts_of(stem) < since:
            continue
        ids.append(stem)
    ids.sort()
    messages = []
    for msg_id, data in zip(ids, store.read_many([f"{BOARD}/{i}.md" for i in ids], MAX_FILE)):
        if isinstance(data, Exception):
            warnings.append(f"{BOARD}/{msg_id}.md: unreadable, skipped ({data})")
            continue
        try:
            messages.append(parse(msg_id, data))
        except Malformed as exc:
            warnings.append(f"{BOARD}/{msg_id}.md: malformed, skipped ({exc})")
    return Listing(messages, warnings)


def read_message(store: Store, message: str) -> Message:
    msg_id = normalize_id(message)
    try:
        data = store.read(f"{BOARD}/{msg_id}.md", MAX_FILE)
    except NotFound:
        raise NotFound(f"no message {msg_id} on the board") from None
    try:
        return parse(msg_id, data)
    except Malformed as exc:
        raise WorkspaceError(f"{BOARD}/{msg_id}.md is malformed: {exc}") from None
