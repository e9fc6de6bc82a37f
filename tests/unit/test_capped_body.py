"""The size cap without a copy: predict takes an ASCII body as the event's own str, and the payload
checks answer a str exactly as they answer its bytes.

A 1 MiB body refused by its counts used to be encoded first (0.1-0.2 ms, more than the rest of the
refusal); `make bench` measures that rejection (`wrong_shape_max`).
"""

from __future__ import annotations

import numpy as np
import pytest
from model_runtime.errors import BadRequest, PayloadTooLarge
from model_runtime.http import capped_body, raw_body
from model_serving.payload import validate_request

CAP = 1024 * 1024
ROW = "[5.1,3.5,1.4,0.2]"


def test_an_ascii_body_is_the_events_own_str() -> None:
    # Given a body of ASCII characters just under the cap
    body = '{"instances":[[' + ",".join(["1.5"] * ((CAP - 20) // 4)) + "]]}"
    # When the cap is applied
    capped = capped_body({"body": body}, CAP)
    # Then the same object comes back, not a copy, and raw_body gives its bytes
    assert capped is body
    assert raw_body({"body": body}, CAP) == body.encode()


@pytest.mark.parametrize("extra", [0, 1], ids=["at-the-cap", "one-byte-over"])
def test_a_non_ascii_body_is_capped_by_its_utf8_bytes(extra: int) -> None:
    # Given a body whose characters fit the cap but whose UTF-8 bytes (é is two) may not
    body = "é" * 512 + "a" * (CAP - 1024 + extra)
    # When the cap is applied
    # Then it is judged by its bytes: at the cap it is the bytes, one byte over it is a 413
    if extra:
        with pytest.raises(PayloadTooLarge):
            capped_body({"body": body}, CAP)
    else:
        assert capped_body({"body": body}, CAP) == body.encode()


BODIES = {
    "valid": '{"instances":[' + ",".join([ROW] * 3) + "]}",
    "valid-large": '{"instances":[' + ",".join([ROW] * 1000) + "]}",
    "probabilities": '{"instances":[' + ROW + '],"parameters":{"probabilities":true}}',
    "one-long-row": '{"instances":[[' + ",".join(["1.5"] * 262_139) + "]]}",
    "too-many-rows": '{"instances":[' + ",".join([ROW] * 1001) + "]}",
    "short-row": '{"instances":[[5.1,3.5,1.4]]}',
    "malformed": '{"instances":[[5.1,3.5,1.4,0.2]]' + " " * 60 + ",",
    "string-value": '{"instances":[["5.1",3.5,1.4,0.2]]}',
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_an_ascii_str_is_answered_as_its_bytes(body: str) -> None:
    # Given a body, as the event's str and as its bytes
    # When both are validated for a 4-feature model with max_batch 1000
    answers = []
    for given in (body, body.encode()):
        try:
            rows, parameters = validate_request(given, 4, 1000)
            answers.append(("ok", rows.tolist(), parameters))
        except BadRequest as refusal:
            answers.append(("400", refusal.detail, None))
    # Then the answers are identical: the same rows, or the same refusal
    assert answers[0] == answers[1]
    if body in (BODIES["valid"], BODIES["valid-large"]):
        assert answers[0][0] == "ok" and np.asarray(answers[0][1]).shape[1] == 4
