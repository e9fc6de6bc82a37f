"""The small defects of issue #23: a bearer token must be a canonical compact JWS before any cache
sees it; disabling a tenant revokes the tokens issued before it; `inferctl` reads a model file
without unbounded reads; `disable-user` says what it does."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from model_runtime.tokens import VerifiedTokens

from functions.authorizer import app as authorizer_app
from functions.predict.app import lambda_handler
from inferctl import cli
from inferctl.cli import main
from tests.support import (
    FakeLambdaContext,
    Stack,
    assert_problem,
    current_runtime,
    load_event,
    token_for,
    use_runtime,
)

_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def predict(authorization: str) -> dict[str, Any]:
    event = load_event("predict_alice")
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Authorization", None)
    event["headers"]["Authorization"] = authorization
    event["multiValueHeaders"]["Authorization"] = [authorization]
    return lambda_handler(event, FakeLambdaContext())


def flipped_unused_bits(token: str) -> str:
    """The same signature bytes, spelled with the last character's unused low bits set: a lenient
    decoder reads both spellings as one signature (an RS256 signature is 342 characters, the last
    carrying 2 bits and 4 unused)."""
    head, signature = token.rsplit(".", 1)
    assert len(signature) % 4 == 2
    return f"{head}.{signature[:-1]}{_BASE64URL[_BASE64URL.index(signature[-1]) ^ 1]}"


def padded_segment(index: int) -> Callable[[str], str]:
    def pad(token: str) -> str:
        parts = token.split(".")
        parts[index] += "=="
        return ".".join(parts)

    return pad


NON_CANONICAL: dict[str, Callable[[str], str]] = {
    "padded signature": lambda t: t + "==",
    "padded header": padded_segment(0),
    "padded payload": padded_segment(1),
    "one pad character": lambda t: t + "=",
    "standard alphabet": lambda t: t.replace("-", "+").replace("_", "/") if "-" in t or "_" in t else t + "+",
    "space inside": lambda t: t[:20] + " " + t[20:],
    "fourth segment": lambda t: t + ".e30",
    "empty segment": lambda t: t.split(".")[0] + ".." + t.split(".")[2],
}


@pytest.mark.parametrize("case", NON_CANONICAL)
def test_a_non_canonical_variant_of_a_good_token_is_a_401_before_any_cache_lookup(
    alice_token: str, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given alice's token, served once (so it sits in predict's verified-token cache)
    assert predict(f"Bearer {alice_token}")["statusCode"] == 200
    lookups: list[str] = []
    original = VerifiedTokens.get
    monkeypatch.setattr(
        VerifiedTokens, "get", lambda self, token, *a: lookups.append(token) or original(self, token, *a)
    )
    # When the same token is sent spelled another way
    variant = NON_CANONICAL[case](alice_token)
    assert variant != alice_token
    response = predict(f"Bearer {variant}")
    # Then it is the 401 of any bad token, and no cache was asked about it
    assert_problem(response, 401)
    assert lookups == []


def test_a_signature_spelled_with_unused_bits_set_is_a_401_and_never_cached(alice_token: str) -> None:
    # Given alice's token, served once
    assert predict(f"Bearer {alice_token}")["statusCode"] == 200
    # When its signature is spelled with the last character's unused bits set (same bytes)
    variant = flipped_unused_bits(alice_token)
    # Then it is refused, and not remembered as verified
    assert_problem(predict(f"Bearer {variant}"), 401)
    assert current_runtime().tokens.verified.get(variant, current_runtime().keyring(), time.time()) is None


@pytest.mark.parametrize("spell", [NON_CANONICAL["padded signature"], flipped_unused_bits])
def test_the_authorizer_refuses_non_canonical_tokens_too(
    alice_token: str, spell: Callable[[str], str]
) -> None:
    # Given the genuine token is answered with a policy (tenant-a has no API key here: a Deny)
    genuine = load_event("authorizer_alice", alice_token=alice_token)
    assert "policyDocument" in authorizer_app.lambda_handler(genuine, FakeLambdaContext())
    # Then its non-canonical spelling is refused as a bad token
    event = load_event("authorizer_alice", alice_token=spell(alice_token))
    with pytest.raises(Exception, match="Unauthorized"):
        authorizer_app.lambda_handler(event, FakeLambdaContext())


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_stays_case_insensitive(alice_token: str, scheme: str) -> None:
    assert predict(f"{scheme} {alice_token}")["statusCode"] == 200


def test_disabling_a_tenant_revokes_the_tokens_issued_before_it(
    demo: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given alice's token, issued a few seconds ago and served
    old = token_for("alice", "tenant-a", now=int(time.time()) - 5)
    assert predict(f"Bearer {old}")["statusCode"] == 200
    # When the operator disables tenant-a, then enables it again
    assert main(["disable-tenant", "tenant-a"]) == 0
    assert "its tokens issued so far revoked" in capsys.readouterr().out
    assert main(["enable-tenant", "tenant-a"]) == 0
    use_runtime()  # past the mapping TTL
    # Then the token from before the disable stays refused, as a disabled user's would
    assert_problem(predict(f"Bearer {old}"), 401)
    # And a token issued after it is served
    fresh = token_for("alice", "tenant-a", now=demo.tenant("tenant-a").tokens_not_before)
    assert predict(f"Bearer {fresh}")["statusCode"] == 200


def test_disable_user_says_what_happens_to_issued_tokens(
    demo: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["disable-user", "alice"]) == 0
    said = capsys.readouterr().out
    ttl = current_runtime().settings.mapping_ttl_seconds
    assert f"tokens already issued to it are refused within {ttl} s" in said
    assert "stay valid" not in said and "revoke-tokens" not in said


def test_a_model_path_that_is_not_a_regular_file_is_one_line(
    demo: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the operator names /dev/zero (endless) as the model
    code = main(["create-tenant", "tenant-z", "--model", "/dev/zero"])
    # Then one error line, nothing read, nothing written
    err = capsys.readouterr().err
    assert code == 1
    assert err == "error: /dev/zero is not a regular file: give the model's file\n"
    assert current_runtime().table.get_tenant("tenant-z") is None


def test_a_model_file_past_the_cap_is_read_only_to_the_cap(
    demo: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file one byte past a (lowered) cap
    monkeypatch.setattr(cli, "MAX_MODEL_BYTES", 1000)
    big = tmp_path / "big.onnx"
    big.write_bytes(b"\x00" * 100_000)
    reads: list[int] = []
    real_open = Path.open

    def spying_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        file = real_open(self, *args, **kwargs)
        real_read = file.read
        file.read = lambda size=-1: reads.append(size) or real_read(size)  # type: ignore[method-assign]
        return file

    monkeypatch.setattr(Path, "open", spying_open)
    # When it is given as the model
    code = main(["create-tenant", "tenant-z", "--model", str(big)])
    # Then it is refused in one line after reading at most the cap plus one byte
    assert code == 1
    assert capsys.readouterr().err == f"error: {big} is larger than 1000 bytes, the most a model may be\n"
    assert reads == [1001]


def test_the_disable_tenant_help_says_tokens_stay_revoked() -> None:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    enable = commands.choices["enable-tenant"].description  # type: ignore[attr-defined]
    assert "tokens issued before the disable stay revoked" in enable
    assert json.dumps(enable)  # one plain string
