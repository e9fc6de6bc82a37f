"""Signing key rotation: the `keyring` item that `model_runtime.store.get_keyring` reads.

Tokens are verified against every key in `verify_key_ids` and signed with `active_key_id`.
Containers cache the ring for `MAPPING_TTL_SECONDS`, so a rotation is done in two writes:

1. stage: the new key joins `verify_key_ids` while the old one still signs;
2. after one cache lifetime, when every predict container trusts the new key, it becomes
   active: `active_key_id = new`, `verify_key_ids = [new, previous]`.

Signing with the new key at once would let a fresh login container issue tokens that a predict
container with a cached ring still refuses. The previous key keeps verifying until
`finish_rotation` drops it, which it refuses to do before the last token that key signed has
expired. Every write is conditional on the ring's `version`, so two operators cannot interleave.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from model_runtime import aws
from model_runtime.settings import get_settings
from model_runtime.store import KEYRING_PK

from inferctl.onboarding import OnboardingError

SIGNING_KEY_TAG = "inference-signing-key"  # what the functions' IAM policies match
KEY_SPEC: Final = "RSA_2048"
KEY_USAGE: Final = "SIGN_VERIFY"


@dataclass(frozen=True, slots=True)
class Ring:
    active_key_id: str
    verify_key_ids: tuple[str, ...]
    version: int  # 0: no keyring item yet (the template's key signs and verifies alone)
    rotated_at: int

    @property
    def retiring(self) -> tuple[str, ...]:
        return tuple(key for key in self.verify_key_ids if key != self.active_key_id)


@dataclass(frozen=True, slots=True)
class Rotation:
    new_key_id: str
    previous_key_id: str
    tag_value: str
    rotated_at: int


def read_ring() -> Ring:
    item = (
        aws.dynamodb()
        .get_item(TableName=get_settings().table_name, Key={"pk": {"S": KEYRING_PK}}, ConsistentRead=True)
        .get("Item")
    )
    if item is None:
        key_id = get_settings().signing_key_id
        if not key_id:
            raise OnboardingError("no signing key: pass --stack NAME or --key-id, or set SIGNING_KEY_ID")
        return Ring(key_id, (key_id,), 0, 0)
    return Ring(
        active_key_id=item["active_key_id"]["S"],
        verify_key_ids=tuple(key["S"] for key in item["verify_key_ids"]["L"]),
        version=int(item.get("version", {"N": "1"})["N"]),
        rotated_at=int(item.get("rotated_at", {"N": "0"})["N"]),
    )


def _write_ring(previous: Ring, active: str, verify: tuple[str, ...], rotated_at: int) -> Ring:
    client = aws.dynamodb()
    ring = Ring(active, verify, previous.version + 1, rotated_at)
    condition: dict[str, Any] = (
        {"ConditionExpression": "attribute_not_exists(pk)"}
        if previous.version == 0
        else {
            "ConditionExpression": "version = :version",
            "ExpressionAttributeValues": {":version": {"N": str(previous.version)}},
        }
    )
    try:
        client.put_item(
            TableName=get_settings().table_name,
            Item={
                "pk": {"S": KEYRING_PK},
                "active_key_id": {"S": active},
                "verify_key_ids": {"L": [{"S": key} for key in verify]},
                "version": {"N": str(ring.version)},
                "rotated_at": {"N": str(rotated_at)},
                "updated_at": {"N": str(int(time.time()))},
            },
            **condition,
        )
    except client.exceptions.ConditionalCheckFailedException:
        raise OnboardingError("the key ring changed while this command ran; check it and retry") from None
    return ring


def _tag_of(key_id: str) -> str | None:
    tags = aws.kms().list_resource_tags(KeyId=key_id).get("Tags", [])
    return next((tag["TagValue"] for tag in tags if tag["TagKey"] == SIGNING_KEY_TAG), None)


def rotate_signing_key(
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
    ring = read_ring()
    if ring.retiring and not force:
        raise OnboardingError(
            f"a rotation is not finished ({', '.join(ring.retiring)} still verifies): "
            "run finish-rotation first, or pass --force"
        )
    tag = tag_value or _tag_of(ring.active_key_id)
    if not tag:
        raise OnboardingError(
            f"the active key has no {SIGNING_KEY_TAG} tag: pass --tag-value (the stack name) or --stack"
        )

    kms = aws.kms()
    new_key = kms.create_key(
        KeySpec=KEY_SPEC,
        KeyUsage=KEY_USAGE,
        Description="Signs the inference API's access tokens (RS256); created by inferctl.",
        Tags=[{"TagKey": SIGNING_KEY_TAG, "TagValue": tag}],
    )["KeyMetadata"]["KeyId"]
    previous = ring.active_key_id
    try:
        staged = _write_ring(ring, previous, (previous, new_key), ring.rotated_at)
    except OnboardingError:
        # Nothing refers to the new key: do not leave a billed, unused key behind.
        kms.schedule_key_deletion(KeyId=new_key, PendingWindowInDays=7)
        raise

    wait = get_settings().mapping_ttl_seconds
    progress(f"staged {new_key} for verification; waiting {wait} s for the functions' key ring caches")
    sleep(wait)
    rotated_at = int(time.time())
    _write_ring(staged, new_key, (new_key, previous), rotated_at)
    return Rotation(new_key, previous, tag, rotated_at)


def earliest_finish(rotated_at: int) -> int:
    """When the last token signed by a key retired at `rotated_at` has expired in every container's view."""
    settings = get_settings()
    return (
        rotated_at + settings.token_ttl_seconds + settings.token_leeway_seconds + settings.mapping_ttl_seconds
    )


def finish_rotation(
    retire: str | None = None, *, force: bool = False, now: int | None = None
) -> tuple[str, ...]:
    """Drop retired keys from verification; returns the key ids dropped (none: nothing to do)."""
    ring = read_ring()
    if retire is not None:
        if retire == ring.active_key_id:
            raise OnboardingError(f"{retire} is the active signing key: rotate before retiring it")
        if retire not in ring.retiring:
            raise OnboardingError(f"{retire} is not in the key ring")
    dropped = (retire,) if retire is not None else ring.retiring
    if not dropped:
        return ()
    ready_at = earliest_finish(ring.rotated_at)
    if (int(time.time()) if now is None else now) < ready_at and not force:
        until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ready_at))
        raise OnboardingError(
            f"tokens signed by {', '.join(dropped)} may be valid until {until}: "
            "run finish-rotation again then, or pass --force"
        )
    keep = tuple(key for key in ring.verify_key_ids if key not in dropped)
    _write_ring(ring, ring.active_key_id, keep, ring.rotated_at)
    return dropped
