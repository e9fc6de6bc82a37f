"""Signing key rotation: the key ring (`model_runtime.table.KeyRing`) the functions verify with.

Tokens are verified against every key in `verify_key_ids` and signed with `active_key_id`.
Containers cache the ring for `MAPPING_TTL_SECONDS`, so a rotation is done in two writes:

1. stage: the new key joins `verify_key_ids` while the old one still signs;
2. after one cache lifetime, when every predict container trusts the new key, it becomes
   active: `active_key_id = new`, `verify_key_ids = [new, previous]`.

Signing with the new key at once would let a fresh login container issue tokens that a predict
container with a cached ring still refuses. The previous key keeps verifying until
`finish_rotation` drops it, which it refuses to do before the last token that key signed has
expired. Every write is conditional on the ring's `version`, so two operators cannot interleave.
Every function takes the CLI's `Runtime` (`inferctl.target`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from model_runtime.runtime import Runtime
from model_runtime.table import ItemMissing, KeyRing
from model_runtime.tokens import SIGNING_KEY_TAG

from inferctl.onboarding import OnboardingError

KEY_SPEC: Final = "RSA_2048"
KEY_USAGE: Final = "SIGN_VERIFY"


@dataclass(frozen=True, slots=True)
class Rotation:
    new_key_id: str
    previous_key_id: str
    tag_value: str
    rotated_at: int


def read_ring(runtime: Runtime) -> KeyRing:
    """The stored ring (a consistent read), or the template's key alone (version 0)."""
    key_id = runtime.settings.signing_key_id
    ring = runtime.table.get_keyring(key_id, consistent=True)
    if ring.version == 0 and not key_id:
        raise OnboardingError("no signing key: pass --stack NAME or --key-id, or set SIGNING_KEY_ID")
    return ring


def _write_ring(
    runtime: Runtime, previous: KeyRing, active: str, verify: tuple[str, ...], rotated_at: int
) -> KeyRing:
    ring = KeyRing(active, verify, previous.version + 1, rotated_at)
    try:
        runtime.table.put_keyring(ring, previous.version, int(time.time()))
    except ItemMissing:
        raise OnboardingError("the key ring changed while this command ran; check it and retry") from None
    return ring


def _tag_of(runtime: Runtime, key_id: str) -> str | None:
    tags = runtime.kms.list_resource_tags(KeyId=key_id).get("Tags", [])
    return next((tag["TagValue"] for tag in tags if tag["TagKey"] == SIGNING_KEY_TAG), None)


def rotate_signing_key(
    runtime: Runtime,
    tag_value: str | None = None,
    *,
    force: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = lambda _: None,
) -> Rotation:
    """Create a new KMS signing key, stage it, wait one cache lifetime, then make it active.

    `tag_value` is the stack name the functions' policies match; by default the current active
    key's own tag. A rotation whose previous key still verifies must be finished first, or the
    key before it would stop verifying while its tokens may still be live (`force` overrides).
    """
    ring = read_ring(runtime)
    if ring.retiring and not force:
        raise OnboardingError(
            f"a rotation is not finished ({', '.join(ring.retiring)} still verifies): "
            "run finish-rotation first, or pass --force"
        )
    tag = tag_value or _tag_of(runtime, ring.active_key_id)
    if not tag:
        raise OnboardingError(
            f"the active key has no {SIGNING_KEY_TAG} tag: pass --tag-value (the stack name) or --stack"
        )

    kms = runtime.kms
    new_key = kms.create_key(
        KeySpec=KEY_SPEC,
        KeyUsage=KEY_USAGE,
        Description="Signs the inference API's access tokens (RS256); created by inferctl.",
        Tags=[{"TagKey": SIGNING_KEY_TAG, "TagValue": tag}],
    )["KeyMetadata"]["KeyId"]
    previous = ring.active_key_id
    try:
        staged = _write_ring(runtime, ring, previous, (previous, new_key), ring.rotated_at)
    except OnboardingError:
        # Nothing refers to the new key: do not leave a billed, unused key behind.
        kms.schedule_key_deletion(KeyId=new_key, PendingWindowInDays=7)
        raise

    wait = runtime.settings.mapping_ttl_seconds
    progress(f"staged {new_key} for verification; waiting {wait} s for the functions' key ring caches")
    sleep(wait)
    rotated_at = int(time.time())
    _write_ring(runtime, staged, new_key, (new_key, previous), rotated_at)
    return Rotation(new_key, previous, tag, rotated_at)


def earliest_finish(runtime: Runtime, rotated_at: int) -> int:
    """When the last token signed by a key retired at `rotated_at` has expired in every container's view."""
    settings = runtime.settings
    return (
        rotated_at + settings.token_ttl_seconds + settings.token_leeway_seconds + settings.mapping_ttl_seconds
    )


def finish_rotation(
    runtime: Runtime, retire: str | None = None, *, force: bool = False, now: int | None = None
) -> tuple[str, ...]:
    """Drop retired keys from verification; returns the key ids dropped (none: nothing to do)."""
    ring = read_ring(runtime)
    if retire is not None:
        if retire == ring.active_key_id:
            raise OnboardingError(f"{retire} is the active signing key: rotate before retiring it")
        if retire not in ring.retiring:
            raise OnboardingError(f"{retire} is not in the key ring")
    dropped = (retire,) if retire is not None else ring.retiring
    if not dropped:
        return ()
    ready_at = earliest_finish(runtime, ring.rotated_at)
    if (int(time.time()) if now is None else now) < ready_at and not force:
        until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ready_at))
        raise OnboardingError(
            f"tokens signed by {', '.join(dropped)} may be valid until {until}: "
            "run finish-rotation again then, or pass --force"
        )
    keep = tuple(key for key in ring.verify_key_ids if key not in dropped)
    _write_ring(runtime, ring, ring.active_key_id, keep, ring.rotated_at)
    return dropped
