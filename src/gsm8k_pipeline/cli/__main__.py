"""`python -m gsm8k_pipeline.cli`: the `gsm8k` command."""

from . import main

main()
