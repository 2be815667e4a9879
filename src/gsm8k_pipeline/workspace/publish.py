"""`gsm8k publish`: this run's records (metrics/all.json) + provenance -> artifacts/results/, then the
workspace's LEADERBOARD.md regenerated from every agent's results.

A results file, `artifacts/results/AGENT/<UTC timestamp>.AGENT.results.<suffix>.json`:

    {"format": "gsm8k-results/1", "agent_id": AGENT, "published_at": ISO,
     "provenance": {"git_commit", "git_dirty", "params_digest", "dvc_lock_sha256"},
     "models": [record, ...], "comparisons": {...}}

`comparisons` are the differences behind the Answer, as metrics/all.json holds them (per question and budget:
first, second, budget, difference, ci95, p_value); the leaderboard here ranks the models only.

Other agents' files are input from strangers: anything that is not exactly that shape (bad JSON, wrong
types, non-finite or out-of-range numbers, an agent id that doesn't match its folder, oversized) is
skipped with a warning; every string shown in LEADERBOARD.md is escaped for Markdown and HTML.
LEADERBOARD.md is the workspace's one derived file: it is atomically replaced, never appended to, and
any agent can regenerate it (`gsm8k workspace leaderboard`).
"""

from __future__ import annotations

import hashlib
import html
import json
import random
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..results import Invalid, text, validate_record
from . import AGENT_ID_RE, ISO_TIME, NAME_TIME, NotFound, WorkspaceError, printable, validate_agent_id
from .store import Entry, Store, write_unique

FORMAT = "gsm8k-results/1"
RESULTS = "artifacts/results"
LEADERBOARD = "LEADERBOARD.md"
MAX_RESULT_FILE = 4 * 2**20
MAX_RECORDS = 10_000
_RESULT_NAME_RE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,127}\.json")


# --- provenance -----------------------------------------------------------------------------


def _git(*args: str, cwd: Path) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def provenance(params_path: Path, dvc_lock: Path, cwd: Path = Path(".")) -> tuple[dict, list[str]]:
    from ..params import digest, load

    warnings = []
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    dirty = None
    if commit is None:
        warnings.append("not in a git repository (or no commit): git_commit is null")
    else:
        status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
        dirty = bool(status) if status is not None else None
        if dirty:
            warnings.append("uncommitted changes: the published git_commit does not describe this run exactly")
    lock = None
    if dvc_lock.is_file():
        lock = hashlib.sha256(dvc_lock.read_bytes()).hexdigest()
    else:
        warnings.append(f"{dvc_lock}: missing, dvc_lock_sha256 is null")
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "params_digest": digest(load(params_path)),
        "dvc_lock_sha256": lock,
    }, warnings


def load_metrics(path: Path) -> tuple[list[dict], dict]:
    """metrics/all.json's records (keyed by id, or a list) and the comparisons behind its Answer."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkspaceError(f"{path}: not found — run the pipeline first (gsm8k leaderboard writes it)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "models" not in data:
        raise WorkspaceError(f"{path}: expected an object with 'models'")
    models, comparisons = data["models"], data.get("comparisons", {})
    models = list(models.values()) if isinstance(models, dict) else models
    if not isinstance(models, list) or not models:
        raise WorkspaceError(f"{path}: no model records")
    if not isinstance(comparisons, dict):
        raise WorkspaceError(f"{path}: 'comparisons' is not an object")
    return models, comparisons


# --- validation of anyone's results file ------------------------------------------------------


def _reject_constant(name: str):
    raise Invalid(f"{name} is not valid JSON")


def validate_results(data: bytes, agent_dir: str) -> dict:
    """A results file's contents, checked; Invalid says why it is skipped."""
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except Invalid:
        raise
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise Invalid("not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise Invalid(f"not a {FORMAT} file")
    if doc.get("agent_id") != agent_dir:
        raise Invalid("its agent_id does not match its folder")
    published = text(doc.get("published_at"), "published_at", 64, optional=False)
    prov = doc.get("provenance")
    if not isinstance(prov, dict):
        raise Invalid("provenance is not an object")
    dirty = prov.get("git_dirty")
    if dirty is not None and not isinstance(dirty, bool):
        raise Invalid("provenance.git_dirty is not a boolean")
    provenance = {
        "git_commit": text(prov.get("git_commit"), "provenance.git_commit", 128),
        "git_dirty": dirty,
        "params_digest": text(prov.get("params_digest"), "provenance.params_digest", 128),
        "dvc_lock_sha256": text(prov.get("dvc_lock_sha256"), "provenance.dvc_lock_sha256", 128),
    }
    models = doc.get("models")
    if not isinstance(models, list) or not 1 <= len(models) <= MAX_RECORDS:
        raise Invalid(f"models is not a list of 1-{MAX_RECORDS} records")
    comparisons = doc.get("comparisons", {})
    if not isinstance(comparisons, dict) or not all(isinstance(c, dict) for c in comparisons.values()):
        raise Invalid("comparisons is not an object of objects")
    return {
        "agent_id": agent_dir,
        "published_at": published,
        "provenance": provenance,
        "models": [validate_record(r) for r in models],
    }


# --- publishing -------------------------------------------------------------------------------


@dataclass
class LeaderboardReport:
    rows: list[dict]
    files: int
    skipped: list[tuple[str, str]]  # (path, reason)

    @property
    def warnings(self) -> list[str]:
        return [f"{path}: skipped ({reason})" for path, reason in self.skipped]


@dataclass
class PublishResult:
    path: str
    records: int
    leaderboard: LeaderboardReport
    warnings: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def publish(
    store: Store,
    agent_id: str,
    metrics: Path = Path("metrics/all.json"),
    params: Path = Path("params.yaml"),
    dvc_lock: Path = Path("dvc.lock"),
) -> PublishResult:
    agent_id = validate_agent_id(agent_id)
    models, comparisons = load_metrics(metrics)
    prov, warnings = provenance(params, dvc_lock)
    try:
        checked = [validate_record(r) for r in models]
    except Invalid as exc:
        raise WorkspaceError(f"{metrics}: {exc}") from None
    stale = sorted({r["params_digest"] for r in checked if r["params_digest"] not in (None, prov["params_digest"])})
    if stale:
        warnings.append(
            f"{metrics} was made with other params (digest {', '.join(stale)}) than {params} "
            f"({prov['params_digest']}) now: rerun the pipeline to publish matching provenance"
        )
    when = _now()
    doc = {
        "format": FORMAT,
        "agent_id": agent_id,
        "published_at": when.strftime(ISO_TIME),
        "provenance": prov,
        "models": models,
        "comparisons": comparisons,
    }
    try:
        data = (json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()
        validate_results(data, agent_id)  # we publish only what the leaderboard accepts
    except (ValueError, TypeError) as exc:  # Invalid is a ValueError; NaN or odd types anywhere in all.json
        raise WorkspaceError(f"{metrics}: cannot be published: {exc}") from None
    folder = f"{RESULTS}/{agent_id}"
    store.makedirs(folder)
    stem = f"{folder}/{when.strftime(NAME_TIME)}.{agent_id}.results"
    path = write_unique(store, lambda suffix: (f"{stem}.{suffix}.json", data, f"{stem}.{suffix}.json"))
    report = regenerate_leaderboard(store)
    return PublishResult(path, len(models), report, warnings)


# --- the leaderboard ----------------------------------------------------------------------------


def _result_files(store: Store) -> tuple[list[tuple[str, str, Entry]], list[tuple[str, str]]]:
    """Every `*.json` entry under artifacts/results/AGENT/ as (agent, path, entry), and what was skipped."""
    try:
        agents = store.listdir(RESULTS)
    except NotFound:
        return [], []
    found, skipped = [], []
    for a in sorted(agents, key=lambda e: e.name):
        if a.kind != "dir":
            continue
        if not AGENT_ID_RE.fullmatch(a.name):
            skipped.append((f"{RESULTS}/{printable(a.name, 80)}", "folder is not an agent id"))
            continue
        try:
            entries = store.listdir(f"{RESULTS}/{a.name}")
        except WorkspaceError as exc:  # one agent's broken folder must not break everyone's leaderboard
            skipped.append((f"{RESULTS}/{a.name}", f"cannot list it: {exc}"))
            continue
        found += [
            (a.name, f"{RESULTS}/{a.name}/{e.name}", e)
            for e in sorted(entries, key=lambda e: e.name)
            if e.name.endswith(".json")
        ]
    return found, skipped


def collect(store: Store) -> tuple[list[dict], int, list[tuple[str, str]], frozenset]:
    """Every valid results file in the workspace -> leaderboard rows, file count, skipped files, file set."""
    found, skipped = _result_files(store)
    paths = []
    for agent, path, e in found:
        if e.kind != "file":
            skipped.append((f"{RESULTS}/{agent}/{printable(e.name, 80)}", "not a regular file"))
        elif not _RESULT_NAME_RE.fullmatch(e.name):
            skipped.append((f"{RESULTS}/{agent}/{printable(e.name, 80)}", "odd file name"))
        elif e.size is not None and e.size > MAX_RESULT_FILE:
            skipped.append((path, f"over {MAX_RESULT_FILE} bytes"))
        else:
            paths.append((agent, path))
    rows, files = [], 0
    for (agent, path), data in zip(paths, store.read_many([p for _, p in paths], MAX_RESULT_FILE)):
        if isinstance(data, Exception):
            skipped.append((path, "unreadable"))
            continue
        try:
            doc = validate_results(data, agent)
        except Invalid as exc:
            skipped.append((path, str(exc)))
            continue
        files += 1
        for r in doc["models"]:
            rows.append(
                {
                    **r,
                    "agent_id": agent,
                    "published_at": doc["published_at"],
                    "file": path,
                    "provenance": doc["provenance"],
                }
            )
    # The same run published twice is one row (the first publication).
    unique: dict[tuple, dict] = {}
    for r in sorted(rows, key=lambda r: r["published_at"]):
        key = (
            r["agent_id"],
            r["id"],
            r["accuracy"],
            tuple(r["accuracy_ci95"]),
            r["n"],
            r["provenance"]["params_digest"] or r["params_digest"],
            r["provenance"]["git_commit"] or r["git_commit"],
        )
        unique.setdefault(key, r)
    rows = sorted(
        unique.values(),
        key=lambda r: (-r["accuracy"], -r["accuracy_ci95"][0], r["published_at"], r["agent_id"], r["id"]),
    )
    return rows, files, skipped, frozenset(path for _, path, _ in found)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def cell(value, limit: int = 80) -> str:
    """Text safe in a Markdown table cell: one line, no raw HTML, Markdown syntax escaped."""
    if value is None or value == "":
        return "—"
    text = " ".join(printable(str(value)).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = html.escape(text, quote=False)  # & < >: no raw HTML
    return _MD_SPECIAL.sub(r"\\\1", text)


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")


def render_leaderboard(rows: list[dict], files: int, skipped: list[tuple[str, str]], when: datetime) -> str:
    agents = sorted({r["agent_id"] for r in rows})
    lines = [
        "# Leaderboard",
        "",
        "Regenerated by `gsm8k publish` (or `gsm8k workspace leaderboard`) from every agent's results in "
        "`artifacts/results/`: do not edit it by hand, publish instead.",
        "",
        f"Updated {when.strftime('%Y-%m-%d %H:%M:%S')} UTC · {_n(len(rows), 'result')} from "
        f"{_n(len(agents), 'agent')} in {_n(files, 'file')}"
        + (f" · {_n(len(skipped), 'file')} skipped (see below)" if skipped else "")
        + ".",
        "",
    ]
    if not rows:
        lines += ["No results yet: `gsm8k publish` adds yours.", ""]
    else:
        lines += [
            "| rank | accuracy (95 % CI) | model | method | budget | base model | n | agent | published "
            "| git commit | params | file |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for rank, r in enumerate(rows, 1):
            lo, hi = r["accuracy_ci95"]
            prov = r["provenance"]
            commit = prov["git_commit"] or r["git_commit"]
            commit = (commit[:10] + ("+dirty" if prov["git_dirty"] else "")) if commit else None
            params = prov["params_digest"] or r["params_digest"]
            acc = f"{100 * r['accuracy']:.1f} % ({100 * lo:.1f}–{100 * hi:.1f})"
            lines.append(
                "| "
                + " | ".join(
                    [
                        str(rank),
                        acc,
                        cell(r["id"]),
                        cell(r["method"]),
                        cell(r["budget"]),
                        cell(r["base_model"]),
                        str(r["n"]),
                        cell(r["agent_id"]),
                        cell(r["published_at"][:19].replace("T", " ")),
                        cell(commit),
                        cell(params),
                        cell(r["file"].rsplit("/", 1)[-1], 120),
                    ]
                )
                + " |"
            )
        lines.append("")
    if skipped:
        lines += ["## Skipped result files", ""]
        lines += [f"- {cell(path, 200)}: {cell(reason, 120)}" for path, reason in skipped]
        lines.append("")
    return "\n".join(lines)


# The board's last line: a digest of the result files it was made from, so any publisher can tell whether
# the stored board covers every file there is now.
_COVERS_RE = re.compile(rb"<!-- gsm8k-results: covers ([0-9a-f]{64}) -->\n\Z")
_ROUNDS = 50


def _covers(names: frozenset) -> str:
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def _stored_covers(store: Store) -> str | None:
    try:
        m = _COVERS_RE.search(store.read(LEADERBOARD, 64 * 2**20))
    except WorkspaceError:
        return None
    return m[1].decode() if m else None


def regenerate_leaderboard(store: Store) -> LeaderboardReport:
    """Rewrite LEADERBOARD.md from every results file, then read it back: while the stored board does not
    cover every results file there is now (results arrived meanwhile, or a slower publisher replaced it
    with a board made before ours), make it again. So the last publisher to write always leaves a board of
    every file: one whose replace lost the race sees it and writes again."""
    for attempt in range(_ROUNDS):
        rows, files, skipped, seen = collect(store)
        text = render_leaderboard(rows, files, skipped, _now()) + f"\n<!-- gsm8k-results: covers {_covers(seen)} -->\n"
        store.replace(LEADERBOARD, text.encode("utf-8"))
        if _stored_covers(store) == _covers(collect_names(store)):
            break
        time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # out of step with the other writers
    return LeaderboardReport(rows, files, skipped)


def collect_names(store: Store) -> frozenset:
    return frozenset(path for _, path, _ in _result_files(store)[0])
