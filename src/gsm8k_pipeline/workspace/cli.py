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
            progress=True,
        )
    _warn(args, result.warnings)
    print(result.path)
    if len(result.files) > 1 or (result.files and result.files[0] != result.path):
        print(f"  {len(result.files)} files")
    return 0


def _cmd_get(args) -> int:
    from .artifacts import get

    with _open(_url(args)) as store:
        written = get(store, args.remote, args.local_path, out_dir=args.out_dir, replace=args.replace)
    for path in written:
        print(path)
    return 0


def _cmd_ls(args) -> int:
    from .artifacts import human, list_artifacts

    with _open(_url(args)) as store:
        entries, warnings = list_artifacts(store, kind=args.kind, agent=args.agent)
    _warn(args, warnings)
    if args.json:
        json.dump([e.as_dict() for e in entries], sys.stdout, indent=1)
        print()
    else:
        for e in entries:
            files = f"{e.files} file" + ("" if e.files == 1 else "s")
            path = printable(e.path, 300) + ("/" if e.directory else "")
            print(f"{path}\t{human(e.size)}\t{files}\t{e.uploaded_at or '?'}")
    return 0


def _cmd_rm(args) -> int:
    from .artifacts import rm

    agent = _agent(args)
    with _open(_url(args)) as store:
        print(f"removed {rm(store, agent, args.target)}")
    return 0


def _cmd_sync(args) -> int:
    from .artifacts import human
    from .sync import is_remote, sync_down, sync_up

    src, dest = args.source, args.dest
    if is_remote(src) == is_remote(dest):
        raise WorkspaceError(
            f"{'both' if is_remote(src) else 'neither'} of {printable(src, 100)!r} and {printable(dest, 100)!r} "
            "name the workspace: sync LOCAL_DIR KIND/ (up) or sync KIND/AGENT[/NAME] LOCAL_DIR (down); "
            "write a local folder called like a KIND as ./NAME"
        )
    options = {"include": args.include, "exclude": args.exclude, "dry_run": args.dry_run}
    if is_remote(dest):
        agent = _agent(args)
        with _open(_url(args)) as store:
            result = sync_up(store, agent, src, dest, progress=True, **options)
    else:
        with _open(_url(args)) as store:
            result = sync_down(store, src, dest, **options)
    _warn(args, result.warnings)
    for item in result.items:
        mark = "+" if item.action == "new" else "~"
        print(
            f"{mark} {printable(item.source, 300)} -> {printable(item.dest, 300)} ({item.action}, {human(item.size)})"
        )
    print(result.summary(args.dry_run))
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
    from ..cli import alias

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
    q = sub.add_parser(
        "get",
        parents=[ws],
        help="download an artifact (a taken destination is refused, or replaced with --replace)",
        description="Download an artifact to exactly LOCAL_PATH, or with --output-dir DIR to DIR/NAME (default: ./NAME). The "
        "destination is never a folder inside an existing one: if it exists, get is refused, unless --replace, "
        "which swaps in the new copy once it is complete and checked. A directory upload is checked against "
        "its manifest before anything appears locally.",
    )
    q.add_argument("remote", metavar="KIND/AGENT/NAME", help="as `gsm8k artifacts list` shows it (or a file in it)")
    q.add_argument(
        "local_path", metavar="LOCAL_PATH", nargs="?", default=None, help="exactly where it lands (default: ./NAME)"
    )
    q.add_argument(
        "--output-dir",
        dest="out_dir",
        default=None,
        metavar="DIR",
        help="land it as DIR/NAME (DIR is created if missing)",
    )
    alias(q, "--out-dir", "--output-dir")
    q.add_argument("--replace", action="store_true", help="replace an existing destination (default: refuse)")
    q.set_defaults(func=_cmd_get)
    q = sub.add_parser("list", parents=[ws], help="list artifacts, one row each: path, size, files, upload time (UTC)")
    q.add_argument("kind", metavar="KIND", nargs="?", default=None, choices=KINDS, help="only this kind (default: all)")
    q.add_argument("--agent", default=None, metavar="ID", help="only this agent's artifacts")
    q.add_argument("--json", action="store_true", help="print the artifacts as JSON")
    q.set_defaults(func=_cmd_ls)
    q = sub.add_parser(
        "rm",
        parents=[ws, who],
        help="delete one of your own artifacts (never another agent's)",
        description="Delete one of your own artifacts, a file or a whole directory upload (complete or "
        "interrupted): it vanishes from listings at once. Another agent's is refused. Removing a results "
        "file regenerates LEADERBOARD.md.",
    )
    q.add_argument("target", metavar="KIND/[AGENT/]NAME", help="your artifact, as `gsm8k artifacts list` shows it")
    q.set_defaults(func=_cmd_rm)
    q = sub.add_parser(
        "sync",
        parents=[ws, who],
        help="make a local folder and the workspace match, sending only what changed",
        description="Up, `sync LOCAL_DIR KIND/`: each entry of LOCAL_DIR becomes your artifact KIND/AGENT/NAME; "
        "compared by size and SHA-256 with its latest version there, an unchanged one is skipped, a new one "
        "uploaded, a changed one uploaded as the next version (NAME.v2, ...; nothing is ever overwritten). "
        "Down, `sync KIND/AGENT[/NAME] LOCAL_DIR`: every file of those (complete) artifacts that is missing "
        "locally or differs in size or SHA-256 is downloaded, checked, and put in place of the local one. "
        "Sync never deletes. The side that starts with a KIND (scripts, results, checkpoints, data) is the "
        "workspace; write a local folder of such a name as ./NAME.",
    )
    q.add_argument("source", metavar="SRC", help="LOCAL_DIR (up) or KIND/AGENT[/NAME] (down)")
    q.add_argument("dest", metavar="DEST", help="KIND/ (up: your folder of that kind) or LOCAL_DIR (down)")
    q.add_argument("--dry-run", action="store_true", help="show what would be transferred, transfer nothing")
    q.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="only paths (relative to LOCAL_DIR) matching GLOB, e.g. '*.py' or 'ckpt/*.json'; repeatable",
    )
    q.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="leave out paths matching GLOB; repeatable"
    )
    q.set_defaults(func=_cmd_sync)

    p = subparsers.add_parser(
        "publish",
        parents=[ws, who],
        help="upload metrics/all.json + provenance to artifacts/results/, regenerate LEADERBOARD.md",
    )
    p.add_argument("--metrics", type=Path, default=Path("metrics/all.json"), help="the results to publish")
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params that made them")
    p.add_argument("--dvc-lock", type=Path, default=Path("dvc.lock"), help="their provenance")
    p.set_defaults(func=_cmd_publish)
