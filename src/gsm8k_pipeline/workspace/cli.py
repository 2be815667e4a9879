"""`gsm8k workspace|board|artifacts|publish` — the collaborative workspace from the command line.

`--workspace` defaults to $GSM8K_WORKSPACE, `--agent-id` to $GSM8K_AGENT_ID. Agent ids and names are
checked before anything is opened or written. Warnings (skipped files) go to stderr; URLs are shown with
any password replaced by ***. fsspec and the backends are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import ENV_AGENT_ID, ENV_WORKSPACE, KINDS, MESSAGE_TYPES, WorkspaceError, printable, validate_agent_id


def _url(args) -> str:
    url = getattr(args, "workspace", None) or os.environ.get(ENV_WORKSPACE)
    if not url:
        raise WorkspaceError(f"no workspace: pass --workspace URL or set {ENV_WORKSPACE}")
    return url


def _agent(args) -> str:
    return validate_agent_id(args.agent_id if args.agent_id is not None else os.environ.get(ENV_AGENT_ID))


def _open(url: str, initialised: bool = True):
    """The workspace store; unless `initialised=False` (init), refuse a URL with no workspace README.md,
    so a mistyped URL fails instead of quietly starting a second, unlaid-out workspace."""
    from .store import open_store

    store = open_store(url)
    if initialised and not store.exists("README.md"):
        store.close()
        raise WorkspaceError(
            f"{store.display}: not a workspace (no README.md): check the URL, "
            "or create one with `gsm8k workspace init URL`"
        )
    return store


def _warn(args, warnings) -> None:
    for w in warnings:
        print(f"gsm8k {args.command}: warning: {printable(w, 500)}", file=sys.stderr)


# --- workspace ----------------------------------------------------------------------------------


def _cmd_init(args) -> int:
    from .layout import init

    url = args.url or _url(args)
    with _open(url, initialised=False) as store:
        result = init(store)
        print(f"workspace {store.display}: created {len(result.created)} files, kept {len(result.kept)} existing")
        for rel in result.created:
            print(f"  + {rel}")
    return 0


def _cmd_leaderboard(args) -> int:
    from .publish import regenerate_leaderboard

    with _open(_url(args)) as store:
        report = regenerate_leaderboard(store)
    _warn(args, report.warnings)
    print(
        f"LEADERBOARD.md: {len(report.rows)} results from {report.files} files"
        + (f", {len(report.skipped)} skipped" if report.skipped else "")
    )
    return 0


# --- board ------------------------------------------------------------------------------------------


def _cmd_post(args) -> int:
    from .board import post

    agent = _agent(args)
    if args.body_file is not None:
        try:
            body = sys.stdin.read() if str(args.body_file) == "-" else Path(args.body_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise WorkspaceError(f"--body-file {args.body_file}: {exc}") from None
    else:
        body = args.body
    with _open(_url(args)) as store:
        msg = post(store, agent, args.type, args.title, body, reply_to=args.reply_to)
    print(msg.id)
    return 0


def _cmd_list(args) -> int:
    from .board import list_messages, parse_since

    since = parse_since(args.since) if args.since else None
    with _open(_url(args)) as store:
        listing = list_messages(store, type=args.type, agent=args.agent, since=since)
    _warn(args, listing.warnings)
    if args.json:
        json.dump([m.as_dict() for m in listing.messages], sys.stdout, indent=1)
        print()
    else:
        for m in listing.messages:
            reply = f"  (re {m.reply_to})" if m.reply_to else ""
            print(f"{m.id}  {printable(m.title, 200)}{reply}")
    return 0


def _cmd_read(args) -> int:
    from .board import read_message

    with _open(_url(args)) as store:
        m = read_message(store, args.message)
    if args.json:
        json.dump(m.as_dict(body=True), sys.stdout, indent=1)
        print()
        return 0
    print(f"id:      {m.id}")
    print(f"from:    {m.agent_id}")
    print(f"type:    {m.type}")
    print(f"created: {printable(m.created, 64)}")
    print(f"title:   {printable(m.title, 800)}")
    if m.reply_to:
        print(f"reply to: {m.reply_to}")
    print()
    print(printable(m.body, keep_newlines=True), end="" if m.body.endswith("\n") else "\n")
    return 0


# --- artifacts --------------------------------------------------------------------------------------


def _cmd_put(args) -> int:
    from .artifacts import put

    agent = _agent(args)
    with _open(_url(args)) as store:
        result = put(
            store,
            agent,
            args.local_path,
            args.target,
            new_version=args.new_version,
            follow_symlinks=args.follow_symlinks,
        )
    _warn(args, result.warnings)
    print(result.path)
    if len(result.files) > 1 or (result.files and result.files[0] != result.path):
        print(f"  {len(result.files)} files")
    return 0


def _cmd_get(args) -> int:
    from .artifacts import get

    with _open(_url(args)) as store:
        written = get(store, args.remote, args.local_path)
    for path in written:
        print(path)
    return 0


def _cmd_ls(args) -> int:
    from .artifacts import list_artifacts

    with _open(_url(args)) as store:
        entries, warnings = list_artifacts(store, kind=args.kind, agent=args.agent)
    _warn(args, warnings)
    if args.json:
        json.dump([e.__dict__ for e in entries], sys.stdout, indent=1)
        print()
    else:
        for e in entries:
            print(f"{printable(e.path, 300)}\t{e.size if e.size is not None else '?'}")
    return 0


# --- publish ----------------------------------------------------------------------------------------


def _cmd_publish(args) -> int:
    from .publish import publish

    agent = _agent(args)
    with _open(_url(args)) as store:
        result = publish(store, agent, metrics=args.metrics, params=args.params, dvc_lock=args.dvc_lock)
    _warn(args, result.warnings + result.leaderboard.warnings)
    lb = result.leaderboard
    print(f"published {result.path} ({result.records} models)")
    print(
        f"LEADERBOARD.md: {len(lb.rows)} results from {lb.files} files"
        + (f", {len(lb.skipped)} skipped" if lb.skipped else "")
    )
    return 0


# --- parser -----------------------------------------------------------------------------------------


def add_cli(subparsers) -> None:
    """Register `workspace`, `board`, `artifacts` and `publish` on the `gsm8k` subparsers."""
    ws = argparse.ArgumentParser(add_help=False)
    ws.add_argument(
        "--workspace",
        metavar="URL",
        default=None,
        help=f"workspace URL: path, file://, sftp://, s3://, hf://buckets/OWNER/NAME (default: ${ENV_WORKSPACE})",
    )
    who = argparse.ArgumentParser(add_help=False)
    who.add_argument("--agent-id", metavar="ID", default=None, help=f"your agent id (default: ${ENV_AGENT_ID})")

    p = subparsers.add_parser("workspace", help="create a shared workspace or regenerate its leaderboard")
    sub = p.add_subparsers(dest="workspace_command", required=True, metavar="SUBCOMMAND")
    q = sub.add_parser(
        "init", help="lay out README.md, message_board/, artifacts/, LEADERBOARD.md (keeps existing files)"
    )
    q.add_argument("url", metavar="URL", nargs="?", default=None, help=f"default: ${ENV_WORKSPACE}")
    q.set_defaults(func=_cmd_init)
    q = sub.add_parser("leaderboard", parents=[ws], help="regenerate LEADERBOARD.md from every agent's results")
    q.set_defaults(func=_cmd_leaderboard)

    p = subparsers.add_parser("board", help="the workspace's message board: post, list, read")
    sub = p.add_subparsers(dest="board_command", required=True, metavar="SUBCOMMAND")
    q = sub.add_parser("post", parents=[ws, who], help="post a message (never edits an existing one)")
    q.add_argument("--type", required=True, choices=MESSAGE_TYPES, help="what kind of message")
    q.add_argument("--title", required=True, help="one line")
    body = q.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", default=None, help="the Markdown body")
    body.add_argument("--body-file", default=None, metavar="F", help="read the body from F ('-': stdin)")
    q.add_argument("--reply-to", default=None, metavar="MESSAGE", help="id of the message this answers")
    q.set_defaults(func=_cmd_post)
    q = sub.add_parser("list", parents=[ws], help="list messages, oldest first (one line each: id, title)")
    q.add_argument("--type", default=None, choices=MESSAGE_TYPES, help="only messages of this type")
    q.add_argument("--agent", default=None, metavar="ID", help="only messages from this agent")
    q.add_argument("--since", default=None, metavar="WHEN", help="ISO date/time (UTC) or an age: 30m, 2h, 3d, 1w")
    q.add_argument("--json", action="store_true", help="print the messages as JSON")
    q.set_defaults(func=_cmd_list)
    q = sub.add_parser("read", parents=[ws], help="print one message")
    q.add_argument("message", metavar="MESSAGE", help="message id (or its file name)")
    q.add_argument("--json", action="store_true", help="print the message as JSON")
    q.set_defaults(func=_cmd_read)

    p = subparsers.add_parser("artifacts", help="share files: artifacts/KIND/AGENT/NAME, never overwritten")
    sub = p.add_subparsers(dest="artifacts_command", required=True, metavar="SUBCOMMAND")
    q = sub.add_parser("put", parents=[ws, who], help="upload a file or directory (recursively)")
    q.add_argument("local_path", metavar="LOCAL_PATH", help="the file or folder to upload")
    q.add_argument("target", metavar="KIND/[NAME]", help=f"KIND: {', '.join(KINDS)}; NAME defaults to the local name")
    q.add_argument("--new-version", action="store_true", help="if NAME is taken, upload as NAME.v2 (next free)")
    q.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="if LOCAL_PATH is a symlink, upload what it points to (refused otherwise)",
    )
    q.set_defaults(func=_cmd_put)
    q = sub.add_parser("get", parents=[ws], help="download an artifact (never overwrites a local file)")
    q.add_argument("remote", metavar="KIND/AGENT/NAME", help="the artifact, as `artifacts list` names it")
    q.add_argument("local_path", metavar="LOCAL_PATH", nargs="?", default=None, help="where to put it (default: NAME)")
    q.set_defaults(func=_cmd_get)
    q = sub.add_parser("list", parents=[ws], help="list artifacts (path and size)")
    q.add_argument("kind", metavar="KIND", nargs="?", default=None, choices=KINDS, help="only this kind (default: all)")
    q.add_argument("--agent", default=None, metavar="ID", help="only this agent's artifacts")
    q.add_argument("--json", action="store_true", help="print the artifacts as JSON")
    q.set_defaults(func=_cmd_ls)

    p = subparsers.add_parser(
        "publish",
        parents=[ws, who],
        help="upload metrics/all.json + provenance to artifacts/results/, regenerate LEADERBOARD.md",
    )
    p.add_argument("--metrics", type=Path, default=Path("metrics/all.json"), help="the results to publish")
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params that made them")
    p.add_argument("--dvc-lock", type=Path, default=Path("dvc.lock"), help="their provenance")
    p.set_defaults(func=_cmd_publish)
