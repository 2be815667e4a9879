"""The workspace's conventions across every command (workspace/layout.py, cli.py), on a local folder and on
sftp://: `workspace init` never overwrites, bad agent ids are refused before anything is written, and the
README's walk-through with the installed command never leaks a password."""

from __future__ import annotations

from gsm8k_pipeline.workspace.board import ID_RE
from support.workspace import (
    SECRET,
    gsm8k,
    gsm8k_proc,
    snapshot,
    table_rows,
    write_metrics,
)


def test_init_lays_out_and_never_overwrites(backend, capsys):
    code, out, err = gsm8k(capsys, "workspace", "init", backend.url)
    assert code == 0, err
    for rel in (
        "README.md",
        "message_board/README.md",
        "LEADERBOARD.md",
        *(f"artifacts/{k}/README.md" for k in ("scripts", "results", "checkpoints", "data")),
    ):
        assert (backend.root / rel).is_file(), rel
    readme = (backend.root / "README.md").read_text()
    assert "Conventions" in readme and "gsm8k board post" in readme and "gsm8k publish" in readme
    (backend.root / "README.md").write_text("edited by a human\n")
    code, out, _ = gsm8k(capsys, "workspace", "init", backend.url)
    assert code == 0 and "created 0 files, kept 7 existing" in out
    assert (backend.root / "README.md").read_text() == "edited by a human\n"


BAD_IDS = [
    "../x",
    "A",
    "",
    "a" * 65,
    "ünï",
    "Alice",
    "-x",
    "_x",
    "x y",
    "x.y",
    "x/y",
    "x\n",
    "ａ",
    "k\u212a",
    "..",
    "x\x00",
    "$(id)",
]


def test_bad_agent_ids_are_refused_and_write_nothing(ws, tmp_path, capsys, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    metrics = write_metrics(tmp_path / "all.json", {"grpo_8": 0.5})
    before = snapshot(ws.root)
    for bad in BAD_IDS:
        for argv in (
            [
                "board",
                "post",
                "--workspace",
                ws.url,
                f"--agent-id={bad}",
                "--type",
                "claim",
                "--title",
                "t",
                "--body",
                "b",
            ],
            ["artifacts", "put", "--workspace", ws.url, f"--agent-id={bad}", script, "scripts/"],
            ["publish", "--workspace", ws.url, f"--agent-id={bad}", "--metrics", metrics],
        ):
            code, out, err = gsm8k(capsys, *argv)
            assert code == 2, (bad, argv[0])
            assert "agent id" in err and err.count("\n") == 1, err
            assert out == ""
        if "\x00" in bad:
            continue  # no environment variable can hold a NUL
        # ... and through the environment variable
        monkeypatch.setenv("GSM8K_AGENT_ID", bad)
        code, _, err = gsm8k(
            capsys, "board", "post", "--workspace", ws.url, "--type", "claim", "--title", "t", "--body", "b"
        )
        assert code == 2 and "agent id" in err
        monkeypatch.delenv("GSM8K_AGENT_ID")
    # reading filters refuse them too
    code, _, err = gsm8k(capsys, "board", "list", "--workspace", ws.url, "--agent", "../x")
    assert code == 2 and "agent id" in err
    assert snapshot(ws.root) == before
    # a bad id does not even create a workspace that doesn't exist yet
    fresh = ws.root.parent / "fresh"
    url = ws.url.replace(str(ws.root), str(fresh))
    code, _, _ = gsm8k(
        capsys,
        "board",
        "post",
        "--workspace",
        url,
        "--agent-id",
        "../x",
        "--type",
        "claim",
        "--title",
        "t",
        "--body",
        "b",
    )
    assert code == 2 and not fresh.exists()
    # the edges of the valid range
    for good in ("a" * 64, "0", "a_b-c9"):
        code, out, err = gsm8k(
            capsys,
            "board",
            "post",
            "--workspace",
            ws.url,
            "--agent-id",
            good,
            "--type",
            "claim",
            "--title",
            "ok",
            "--body",
            "b",
        )
        assert code == 0, err
        assert f".{good}.claim.ok." in out


def test_collaborate_from_zero_with_the_real_cli(backend, tmp_path):
    """docs/collaborate.md's walk-through with the installed command. On sftp the URL carries a
    password: it must never show up in any output or any file written to the workspace."""
    url = backend.url
    if backend.name == "sftp":
        url = backend.server.url(backend.root, password=SECRET)
    env = dict(backend.env, GSM8K_WORKSPACE=url, GSM8K_AGENT_ID="alice")
    outputs = []

    def run(*argv, ok=True):
        proc = gsm8k_proc(env, *argv)
        outputs.append(proc.stdout + proc.stderr)
        assert (proc.returncode == 0) == ok, proc.stderr
        return proc

    run("workspace", "init", url)
    proposal = run(
        "board", "post", "--type", "experiment-proposal", "--title", "GRPO with 8 generations", "--body", "Plan: ..."
    ).stdout.strip()
    assert ID_RE.fullmatch(proposal)
    script = tmp_path / "run.sh"
    script.write_text("uv run snakemake --cores 1 metrics/all.json\n")
    run("artifacts", "put", script, "scripts/")
    # the bucket-style commands, through the installed command too
    folder = tmp_path / "mine"
    (folder / "ck").mkdir(parents=True)
    (folder / "ck" / "w.bin").write_bytes(b"w" * 100)
    (folder / "run.sh").write_text(script.read_text())
    assert run("artifacts", "sync", folder, "scripts/").stdout.splitlines()[-1] == "1 new, 0 changed, 1 unchanged"
    assert run("artifacts", "sync", "scripts/alice", tmp_path / "down").stdout.endswith(
        "2 new, 0 changed, 0 unchanged\n"
    )
    rows = [line.split("\t")[:3] for line in run("artifacts", "list", "scripts").stdout.splitlines()]
    assert rows == [["scripts/alice/ck/", "100 B", "1 file"], ["scripts/alice/run.sh", "44 B", "1 file"]]
    assert run("artifacts", "rm", "scripts/ck").stdout == "removed artifacts/scripts/alice/ck\n"
    assert (
        "already exists locally" in run("artifacts", "get", "scripts/alice/run.sh", tmp_path / "down", ok=False).stderr
    )
    metrics = write_metrics(tmp_path / "metrics" / "all.json", {"grpo_8": 0.61, "full_sft_8": 0.58})
    published = run("publish", "--metrics", metrics).stdout
    assert "published artifacts/results/alice/" in published and "2 results from 1 file" in published
    listing = run("board", "list").stdout
    assert proposal in listing and "GRPO with 8 generations" in listing
    # a wrong port: the error names the workspace without its password
    bad = run(
        "board",
        "list",
        "--workspace",
        url.replace(f":{backend.server.port}/", ":1/") if backend.server else str(tmp_path / "missing"),
        ok=False,
    )
    assert "error" in bad.stderr and bad.stderr.count("\n") == 1

    board = (backend.root / "LEADERBOARD.md").read_text()
    assert [r[2] for r in table_rows(board)] == [r"grpo\_8", r"full\_sft\_8"]
    assert all(r[7] == "alice" for r in table_rows(board))
    if backend.name == "sftp":
        assert any("root:***@" in o for o in outputs)
    for text in outputs:
        assert SECRET not in text
    for path, content in snapshot(backend.root).items():
        if isinstance(content, bytes):
            assert SECRET.encode() not in content, path
            assert b"127.0.0.1" not in content, path  # the workspace never records where it lives
