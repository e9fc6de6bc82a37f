"""Entry point: `python -m inferctl <command>` (see `inferctl.cli`)."""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI writes the items the functions read with the functions' own package, which ships in
# the Lambda layer (on Lambda it is /opt/python). From a checkout, that is layers/model_runtime/.
_LAYER = Path(__file__).resolve().parent.parent / "layers" / "model_runtime"


def run() -> int:
    try:
        import model_runtime  # noqa: F401, PLC0415 - installed (or on PYTHONPATH) already?
    except ModuleNotFoundError:
        sys.path.insert(0, str(_LAYER))
    from inferctl.cli import main  # noqa: PLC0415 - needs model_runtime importable

    return main()


if __name__ == "__main__":
    sys.exit(run())
