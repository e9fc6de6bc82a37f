"""Writes template.yaml as deployed in one tenant isolation mode: its `TenantIsolation` parameter's
default set to that mode, nothing else changed. `make template-lint` lints the `shared` rendering
as well as the template itself (whose default is `per-tenant`), so both deployments are linted
(cfn-lint, `sam validate --lint`, checkov); tests/unit/test_template_isolation.py runs cfn-lint
and `sam validate --lint` on both.

Run: `python scripts/render_isolation_mode.py shared OUTPUT.yaml`.
"""

from __future__ import annotations

import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
MODES = ("per-tenant", "shared")
DEFAULT_LINE = "    Default: per-tenant\n    AllowedValues: [per-tenant, shared]\n"


def render(mode: str, template: str) -> str:
    """The template with the TenantIsolation parameter's default set to `mode`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    if template.count(DEFAULT_LINE) != 1:
        raise ValueError("template.yaml's TenantIsolation parameter is not where this script expects it")
    return template.replace(DEFAULT_LINE, DEFAULT_LINE.replace("per-tenant\n", f"{mode}\n", 1))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in MODES:
        print(f"usage: render_isolation_mode.py {{{'|'.join(MODES)}}} OUTPUT.yaml", file=sys.stderr)
        return 2
    output = Path(argv[1])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(argv[0], TEMPLATE.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
