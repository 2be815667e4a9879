"""Errors a user can fix (bad params, bad data, no hub, no GPU): the CLI prints them in one line, exit 2."""


class PipelineError(Exception):
    """A problem with the inputs or the environment, not a bug; the message says what and where."""
