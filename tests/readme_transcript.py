"""The README's shell transcripts: each `$ ` command and the output shown under it, and how that
output is compared with what a real run prints (`tests/local/test_local_stack.py` runs them).

Only what legitimately varies between runs is let through: an elided value (`…`: a token shortened
in the README) matches any value starting as shown, a 12-hex model digest any 12-hex digest (models
trained when a command runs), a time in UTC any time, numbers within floating point noise (BLAS
and SIMD kernels differ between machines). Everything else must be equal: the members of a JSON
body, every line a command prints, the status line and the headers shown of an HTTP response.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

ELISION = "…"
DIGEST = re.compile(r"^[0-9a-f]{12}$")
_DIGEST_IN_TEXT = re.compile(r"\b[0-9a-f]{12}\b")
_UTC_TIME = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\b")
# Probabilities and regression values from ONNX Runtime and BLAS: what the exactness rules allow.
REL_TOLERANCE, ABS_TOLERANCE = 1e-5, 1e-6


@dataclass
class Step:
    """One `$ ` command of a README code block (continuation lines joined) and the lines shown
    under it (none for a command shown without output)."""

    command: str
    shown: list[str] = field(default_factory=list)


def transcript(markdown: str) -> list[Step]:
    """Every `$ ` command of the README's bash blocks, in order, with its shown output: the lines
    up to the next command or `# ` comment, trailing blank lines dropped."""
    steps: list[Step] = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL):
        lines = block.splitlines()
        i, step = 0, None
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1] + " " + lines[i].strip()
                step = Step(command)
                steps.append(step)
            elif line.startswith("# "):
                step = None
            elif step is not None:
                step.shown.append(line)
            i += 1
    for each in steps:
        while each.shown and not each.shown[-1].strip():
            each.shown.pop()
    return steps


def differences(shown: list[str], printed: str) -> list[str]:
    """How what a command printed differs from what the README shows under it (empty: the same)."""
    lines = printed.rstrip("\n").splitlines() if printed.strip() else []
    if shown and shown[0].startswith("HTTP/"):
        return _http_differences(shown, lines)
    if len(lines) != len(shown):
        return [f"{len(shown)} lines shown, {len(lines)} printed: {lines!r}"]
    found: list[str] = []
    for want, got in zip(shown, lines, strict=True):
        found += _line_differences(want, got)
    return found


def _line_differences(want: str, got: str) -> list[str]:
    if want.startswith(("{", "[")):
        try:
            return _json_differences(json.loads(want), json.loads(got), "$")
        except ValueError:
            return [f"shown JSON {want!r}, printed {got!r}"]
    if _normalised(want) != _normalised(got):
        return [f"shown {want!r}, printed {got!r}"]
    return []


def _normalised(text: str) -> str:
    return _UTC_TIME.sub("<time>", _DIGEST_IN_TEXT.sub("<digest>", text))


def _json_differences(want: Any, got: Any, path: str) -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        if set(want) != set(got):
            return [f"{path}: members {sorted(want)} shown, {sorted(got)} printed"]
        return [d for key in want for d in _json_differences(want[key], got[key], f"{path}.{key}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{path}: {len(want)} items shown, {len(got)} printed"]
        pairs = enumerate(zip(want, got, strict=True))
        return [d for i, (w, g) in pairs for d in _json_differences(w, g, f"{path}[{i}]")]
    return [] if _same_value(want, got) else [f"{path}: {got!r} printed, {want!r} shown"]


def _same_value(want: Any, got: Any) -> bool:
    if isinstance(want, str) and isinstance(got, str):
        if ELISION in want:
            return got.startswith(want.split(ELISION, 1)[0])
        if DIGEST.match(want) and DIGEST.match(got):
            return True
    if type(want) is float and type(got) is float:
        return math.isclose(want, got, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)
    return type(want) is type(got) and want == got


def _http_differences(shown: list[str], lines: list[str]) -> list[str]:
    """`curl -i`: the status line, each header shown (others may be printed too), and the body."""
    if not lines:
        return ["nothing printed"]
    blank = shown.index("") if "" in shown else len(shown)
    printed_blank = lines.index("") if "" in lines else len(lines)
    found = [] if lines[0] == shown[0] else [f"status line {lines[0]!r}, shown {shown[0]!r}"]
    headers = {
        line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines[1:printed_blank]
    }
    for line in shown[1:blank]:
        name, value = (part.strip() for part in line.split(":", 1))
        if headers.get(name.lower()) != value:
            found.append(f"header {name}: {headers.get(name.lower())!r} printed, {value!r} shown")
    return found + differences(shown[blank + 1 :], "\n".join(lines[printed_blank + 1 :]))
