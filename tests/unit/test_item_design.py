"""One module owns the item design: `model_runtime.table` spells every attribute name, and every
item is encoded and decoded by its entities, for the functions and for `inferctl` alike."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_runtime import table
from model_runtime.table import (
    ACTIVE,
    ATTRIBUTE_NAMES,
    Client,
    KeyRing,
    ModelPin,
    ModelRecord,
    Tenant,
    TenantChange,
    User,
)

from tests.support import REPO_ROOT

TABLE_MODULE = REPO_ROOT / "layers" / "model_runtime" / "model_runtime" / "table.py"
SOURCE_DIRS = ("functions", "layers", "inferctl", "local", "bench", "scripts", "models")

# Attribute names that are also words of the public API, the logs or the CLI, where they name
# the same fact outside the table: the model card's `n_features`, `max_batch`, `sklearn_version`,
# `task`, `accepts_missing` and `version`, the token request's `username` and `client_id`, the
# log keys `tenant_id`, `username` and `client_id`, problem+json's `status`, the token claim
# `roles` and the tenant-admin API's `roles` and `created_at` (functions/admin). They may appear
# elsewhere as those words; no module but `table` may build or read an item with them (see the
# DynamoDB check). A history record's fields are also the words of predict's log line (its
# record: model_runtime/tenant_metrics.py), of GET /api/v1/history and of the JWT (`sub`).
SHARED_WORDS = frozenset(
    {
        "request_id",
        "sub",
        "client_kind",
        "model_version",
        "rows",
        "latency_ms",
        "probabilities",
        "capture",
        "capture_parts",
        "capture_bytes",
        "username",
        "tenant_id",
        "client_id",
        "status",
        "n_features",
        "max_batch",
        "sklearn_version",
        "interface_changed_at",
        "version",
        "task",
        "accepts_missing",
        "roles",
        "created_at",
    }
)
DYNAMODB_TYPES = frozenset({"S", "N", "L", "M", "BOOL", "SS", "NS"})


def non_test_sources() -> Iterator[Path]:
    for directory in SOURCE_DIRS:
        for path in sorted((REPO_ROOT / directory).rglob("*.py")):
            if ".aws-sam" not in path.parts and path != TABLE_MODULE:
                yield path


def string_constants(tree: ast.AST) -> Iterator[ast.Constant]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def dynamodb_values(tree: ast.AST) -> Iterator[ast.Dict]:
    """Dict literals shaped like a DynamoDB attribute value: {"S": ...}, {"N": ...}, ..."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Dict)
            and len(node.keys) == 1
            and isinstance(node.keys[0], ast.Constant)
            and node.keys[0].value in DYNAMODB_TYPES
        ):
            yield node


def test_every_item_attribute_is_spelled_only_in_the_table_module() -> None:
    # Given every Python source outside the tests, but the item module itself
    item_only = ATTRIBUTE_NAMES - SHARED_WORDS
    found = []
    for path in non_test_sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        # Then no string literal is an item attribute name
        found += [
            f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {node.value!r}"
            for node in string_constants(tree)
            if node.value in item_only
        ]
        # And no DynamoDB attribute value is built there: items are encoded by `table` alone
        found += [
            f"{path.relative_to(REPO_ROOT)}:{node.lineno}: DynamoDB value" for node in dynamodb_values(tree)
        ]
    assert found == []


def test_the_check_would_see_a_stray_spelling() -> None:
    # Given the item module itself, which spells them all
    tree = ast.parse(TABLE_MODULE.read_text())
    spelled = {node.value for node in string_constants(tree)}
    # Then every attribute it declares is spelled there, and it builds DynamoDB values
    assert spelled >= ATTRIBUTE_NAMES
    assert any(True for _ in dynamodb_values(tree))
    # And the shared words are attribute names (the exemption names nothing else)
    assert SHARED_WORDS <= ATTRIBUTE_NAMES


PIN = ModelPin("models/tenant-a/abc.onnx", "ab" * 32, "onnx", 4, (0, 1, "two"), "")
ENTITIES = [
    User("alice", "tenant-a", "$argon2id$...", ("predict",), ACTIVE, 1_700_000_000),
    Tenant.new("tenant-a", PIN, 1000, 1_700_000_000),
    KeyRing("key-2", ("key-2", "key-1"), version=3, rotated_at=1_700_000_000),
    Client("c" * 24, "tenant-a", "ff" * 32, ACTIVE, 1_700_000_000),
]


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda entity: type(entity).__name__)
def test_entities_decode_what_they_encode(entity: User | Tenant | KeyRing | Client) -> None:
    # When an entity is encoded as an item and decoded again
    item = entity.to_item(0) if isinstance(entity, KeyRing) else entity.to_item()
    # Then it is the same entity, and every attribute is a declared one
    assert type(entity).from_item(item) == entity
    assert set(item) <= ATTRIBUTE_NAMES


def test_tenant_changes_and_records_use_declared_names() -> None:
    change = TenantChange(pin=PIN, max_batch=5, status=ACTIVE, tokens_not_before=9, api_key_id="i")
    assert set(change.to_item(1)) <= ATTRIBUTE_NAMES
    record = ModelRecord(PIN.model_sha256, "onnx", "pickle", 4, (0, 1), "", True, 5, 512, 0, "generated")
    assert ModelRecord.from_json(record.to_json()) == record


def test_items_written_before_formats_existed_read_as_pickle() -> None:
    # Given a mapping without model_format (written before formats existed)
    item = Tenant.new("tenant-a", PIN, 10, 0).to_item()
    del item["model_format"]
    # Then it reads as a pickle, which is never served
    assert Tenant.from_item(item).model_format == "pickle"
    assert table.KeyRing.single("k") == KeyRing("k", ("k",), 0, 0)
