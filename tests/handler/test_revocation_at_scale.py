"""Subject cut-offs at scale: a tenant with 1,000 revocations still revokes.

Every revocation (`disable-user`, `revoke-client`) sets the subject's cut-off in a write of its
own, then removes the cut-offs older than any live token in chunks that fit DynamoDB's 4 KB
expression limit. Before, both were one expression, which broke past ~150 stale entries: the user
was disabled, but their tokens stayed valid, and so did every later revocation of the tenant.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from model_runtime.table import Table, tenant_pk

from inferctl.onboarding import SUBJECT_CUTOFF_KEPT_SECONDS, revoke_subject, set_user_status
from tests.support import Stack, current_runtime

DYNAMODB_EXPRESSION_LIMIT = 4096  # bytes, per expression (DynamoDB's documented limit)
EXPRESSIONS = ("UpdateExpression", "ConditionExpression")


@pytest.fixture
def expression_lengths(demo: Stack) -> list[int]:
    """The length of every update expression and condition the code under test sends to DynamoDB."""
    lengths: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        lengths.extend(len(params[name].encode()) for name in EXPRESSIONS if name in params)

    current_runtime().dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", record)
    return lengths


def test_a_revocation_after_1000_stale_ones_holds_and_clears_them(
    demo: Stack, expression_lengths: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the cut-offs 1,000 revocations of tenant-a's subjects left, long enough ago that no
    # token they cut off lives (written at once: moto reads a 1,000-entry map in ~0.3 s, so
    # revoking one by one would take minutes)
    now = int(time.time())
    long_ago = now - SUBJECT_CUTOFF_KEPT_SECONDS - 60
    runtime = current_runtime()
    cutoffs = {f"mc_{i:024x}": {"N": str(long_ago)} for i in range(1000)}
    runtime.dynamodb.update_item(
        TableName=demo.table_name,
        Key={"pk": {"S": tenant_pk("tenant-a")}},
        UpdateExpression="SET subjects_not_before = :cutoffs",
        ExpressionAttributeValues={":cutoffs": {"M": cutoffs}},
    )
    assert len(demo.tenant("tenant-a").subjects_not_before) == 1000
    expression_lengths.clear()
    # When the operator disables alice now
    set_user_status(runtime, "alice", active=False, now=now)
    # Then her tokens issued before now are refused (the cut-off was written)
    tenant = demo.tenant("tenant-a")
    assert tenant.tokens_valid_from("alice") == now + 1
    # And the 1,000 stale cut-offs are gone, in writes DynamoDB accepts
    assert dict(tenant.subjects_not_before) == {"alice": now + 1}
    assert len(expression_lengths) >= 1000 // Table.STALE_CUTOFFS_PER_WRITE
    assert max(expression_lengths) <= DYNAMODB_EXPRESSION_LIMIT
    # And the next revocation is one small write, not a replay of the cleanup
    expression_lengths.clear()
    revoke_subject(runtime, "tenant-a", "bob-in-a", now + 1)
    assert max(expression_lengths) < 100


def test_the_largest_chunk_fits_dynamodbs_expression_limit(
    demo: Stack, expression_lengths: list[int]
) -> None:
    # Given a full chunk of the longest subjects (64 characters: their names go in placeholders)
    runtime = current_runtime()
    subjects = tuple(f"{i:064d}" for i in range(Table.STALE_CUTOFFS_PER_WRITE))
    for subject in subjects:
        runtime.table.set_subject_not_before("tenant-a", subject, 100)
    expression_lengths.clear()
    # When they are dropped / Then one write removes them all, within the limit with room to spare
    assert runtime.table.drop_subject_cutoffs("tenant-a", subjects, older_than=200) == len(subjects)
    assert len(expression_lengths) == 2  # its REMOVE and its condition
    assert max(expression_lengths) <= DYNAMODB_EXPRESSION_LIMIT // 2
    assert demo.tenant("tenant-a").subjects_not_before == {}


def test_a_subject_revoked_again_meanwhile_keeps_its_new_cut_off(demo: Stack) -> None:
    # Given two stale cut-offs read by a cleanup, and one of them revoked again since
    runtime = current_runtime()
    runtime.table.set_subject_not_before("tenant-a", "carol", 100)
    runtime.table.set_subject_not_before("tenant-a", "dave", 100)
    runtime.table.set_subject_not_before("tenant-a", "dave", 5000)
    # When the cleanup drops what it read as stale
    removed = runtime.table.drop_subject_cutoffs("tenant-a", ("carol", "dave"), older_than=1000)
    # Then the fresh cut-off survives: nothing of that chunk was removed (the next cleanup retries)
    assert removed == 0
    assert demo.tenant("tenant-a").subjects_not_before["dave"] == 5000
