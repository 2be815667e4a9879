"""Test support shipped with the tests, not the package: fixtures the tests and the benches build on.

- `hub_fixture`: the hub-shaped stand-in model (a Qwen2 config and tokenizer, random weights);
- `stress`: the workspace's concurrent-posting storm (tests/test_workspace_board.py, bench/workspace.py).
- `workspace`: the workspace tests' backends, the `gsm8k` command in-process and as a subprocess, results;
- `cpu_seconds`: a pytest plugin writing each test's CPU and wall seconds (docs/testing.md).

`uv sync` puts tests/ on the path (pyproject.toml, dev-mode-dirs), so benches import `support` as a package.
"""
