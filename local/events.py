"""`events/*.json` with live tokens, for `sam local invoke FUNCTION -e EVENT` against a running
local stack.

    python -m local.events [--api http://127.0.0.1:3000] [--stack-dir .local/sam-local]
                           [--out .local/sam-local/events]

The committed events carry placeholders where a token goes (`<alice-token>`, `<bob-token>`,
`<expired-token>`; `scripts/make_events.py`). This logs the demo users in through the running
API (`make sam-local`, or `make serve`), so each token is what the login function issued, and
writes every event, placeholders replaced, under the git-ignored `.local/`. `<expired-token>`
becomes alice's token with its times moved an hour back, signed by the stack's own KMS key
(operator access, from the stack directory's `env.sh`): a genuine token that has expired.
Tokens live 15 minutes: run it again when they have expired.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shlex
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from local.serve import DEMO_TENANTS, REPO_ROOT

EVENTS = REPO_ROOT / "events"
DEFAULT_STACK_DIR = REPO_ROOT / ".local" / "sam-local"
PLACEHOLDER = re.compile(r"<([a-z0-9-]+)-token>")
EXPIRED_BY_SECONDS = 3600


def login(api: str, username: str, password: str) -> str:
    """The login function's own token, through the API's token endpoint."""
    request = urllib.request.Request(  # noqa: S310 - the local stack's API, on loopback
        f"{api.rstrip('/')}/api/v1/auth/token",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        token: str = json.load(response)["access_token"]
    return token


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url_json(value: Mapping[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def read_env_sh(path: Path) -> dict[str, str]:
    """The `export NAME=value` lines of the stack's env.sh."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


def expired_copy(token: str, stack_env: Mapping[str, str]) -> str:
    """`token` with iat/nbf/exp an hour earlier, signed again by the stack's KMS key."""
    header_part, claims_part, _ = token.split(".")
    claims = json.loads(b64url_decode(claims_part))
    for claim in ("iat", "nbf", "exp"):
        if claim in claims:
            claims[claim] -= EXPIRED_BY_SECONDS
    signing_input = f"{header_part}.{b64url_json(claims)}"
    kms = boto3.client(
        "kms",
        endpoint_url=stack_env["AWS_ENDPOINT_URL"],
        region_name=stack_env["AWS_DEFAULT_REGION"],
        aws_access_key_id=stack_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack_env["AWS_SECRET_ACCESS_KEY"],
    )
    signature: bytes = kms.sign(
        KeyId=stack_env["SIGNING_KEY_ID"],
        Message=signing_input.encode(),
        MessageType="RAW",
        SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
    )["Signature"]
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def live_tokens(api: str, stack_dir: Path) -> dict[str, str]:
    """Placeholder name -> token: one per demo user, and `expired`."""
    tokens = {demo.username: login(api, demo.username, demo.password) for demo in DEMO_TENANTS}
    tokens["expired"] = expired_copy(tokens[DEMO_TENANTS[0].username], read_env_sh(stack_dir / "env.sh"))
    return tokens


def write_events(tokens: Mapping[str, str], out: Path, source: Path = EVENTS) -> tuple[list[Path], set[str]]:
    """Every event of `source`, placeholders replaced; returns the files and the placeholders left
    as they were (no token known for them)."""
    out.mkdir(parents=True, exist_ok=True)
    unknown: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match[1]
        if name in tokens:
            return tokens[name]
        unknown.add(match[0])
        return match[0]

    written = []
    for event in sorted(source.glob("*.json")):
        target = out / event.name
        target.write_text(PLACEHOLDER.sub(fill, event.read_text()))
        written.append(target)
    return written, unknown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.events", description="events/*.json with live tokens, for `sam local invoke`."
    )
    parser.add_argument("--api", default="http://127.0.0.1:3000", help="the running stack's API")
    parser.add_argument(
        "--stack-dir",
        type=Path,
        default=DEFAULT_STACK_DIR,
        help="the directory of the stack's env.sh (default .local/sam-local, make sam-local's)",
    )
    parser.add_argument("--out", type=Path, help="where to write (default STACK_DIR/events)")
    args = parser.parse_args(argv)
    out: Path = args.out or args.stack_dir / "events"
    try:
        tokens = live_tokens(args.api, args.stack_dir)
    except (OSError, KeyError, ValueError, BotoCoreError, ClientError) as error:
        print(f"error: no tokens from {args.api} and {args.stack_dir}/env.sh: {error}", file=sys.stderr)
        return 1
    written, unknown = write_events(tokens, out)
    print(f"wrote {len(written)} events with live tokens to {out}")
    if unknown:
        print(f"left as they were (no such demo user): {', '.join(sorted(unknown))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
