"""schemathesis hooks for runs against the local stack (loaded through SCHEMATHESIS_HOOKS).

SAM's local gateway cannot carry a request body that is not UTF-8: it answers 502 itself before
any function runs (aws/aws-sam-cli#7927). API Gateway passes such a body on as UTF-8 text, so
against a deployment these cases are kept; locally they would only test SAM's emulator.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def filter_body(context: Any, body: Any) -> bool:
    try:
        if isinstance(body, bytes | bytearray):
            bytes(body).decode("utf-8")
        elif isinstance(body, str):
            body.encode("utf-8")
    except UnicodeError:
        return False
    return True
