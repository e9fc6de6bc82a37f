"""Entry point: `python -m inferctl <command>`, the same as the `inferctl` console command that
installing the project (`make venv`) puts in .venv/bin (see `inferctl.cli`)."""

from __future__ import annotations

import sys

from inferctl.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m inferctl"))  # usage lines name the command as invoked
