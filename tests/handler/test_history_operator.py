"""The operator's side of inference history: capture per tenant, reading any tenant's records,
and erasure that leaves nothing behind (records, captured objects, every object version)."""

from __future__ import annotations

import io
import json

import pytest
from model_runtime.table import TenantChange

from inferctl.cli import main as inferctl
from tests.handler.test_history import record_line, set_tenant
from tests.history_support import deliver, fresh_history_runtimes, predict
from tests.support import Stack, token_for, use_runtime


def run(*argv: str) -> tuple[int, str]:
    output = io.StringIO()
    return inferctl(list(argv), stdout=output), output.getvalue()


@pytest.fixture
def stored(demo: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    fresh_history_runtimes(monkeypatch)
    base = 1_765_000_000_000
    deliver([record_line("tenant-a", "alice", f"a-{i}", base + i * 86_400_000) for i in range(3)])
    deliver([record_line("tenant-a", "carol", f"c-{i}", base + i) for i in range(2)])
    deliver([record_line("tenant-b", "bob", "b-0", base)])
    return demo


def test_set_capture_turns_it_on_with_a_retention(demo: Stack) -> None:
    status, output = run("set-capture", "tenant-a", "on", "--history-days", "90")
    assert status == 0 and "capture on" in output
    tenant = demo.runtime.table.get_tenant("tenant-a")
    assert tenant is not None and tenant.capture and tenant.history_days == 90
    # And the tenant listing shows it, the other tenant at the defaults
    _, listed = run("list-tenants", "--json")
    shown = {row["tenant_id"]: (row["capture"], row["history_days"]) for row in json.loads(listed)}
    assert shown == {"tenant-a": (True, 90), "tenant-b": (False, 30)}
    _, table = run("list-tenants")
    assert table.splitlines()[0].endswith("CAPTURE  HISTORY_DAYS")


@pytest.mark.parametrize("days", ["0", "401"])
def test_a_retention_out_of_range_is_one_error_line(
    demo: Stack, days: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run("set-capture", "tenant-a", "on", "--history-days", days)
    assert status == 1
    assert capsys.readouterr().err.strip() == "error: history days must be 1 to 400"


def test_the_operator_reads_a_tenants_records_and_one_callers_since_a_time(stored: Stack) -> None:
    status, output = run("history", "--tenant", "tenant-a", "--json")
    assert status == 0
    assert [r["request_id"] for r in json.loads(output)] == ["a-2", "a-1", "c-1", "c-0", "a-0"]
    _, output = run("history", "--tenant", "tenant-a", "--user", "alice", "--since", "2025-12-07", "--json")
    assert [r["request_id"] for r in json.loads(output)] == ["a-2", "a-1"]
    _, table = run("history", "--tenant", "tenant-b")
    assert "b-0" in table and "a-0" not in table


def test_purging_a_caller_erases_only_theirs(stored: Stack) -> None:
    status, output = run("purge-history", "--tenant", "tenant-a", "--user", "alice")
    assert status == 0 and "erased 3 history records" in output
    _, left = run("history", "--tenant", "tenant-a", "--json")
    assert [r["sub"] for r in json.loads(left)] == ["carol", "carol"]


def test_purging_a_tenant_leaves_nothing_behind(
    demo: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given tenant-a captures, with a large capture in S3, and tenant-b's history
    set_tenant(demo, monkeypatch, "tenant-a", TenantChange(capture=True))
    row = "[5.1, 3.5, 1.4, 0.2]"
    body = '{"instances": [' + (", " + " " * 250).join([row] * 1000) + "]}"
    _, lines = predict(token_for("alice", "tenant-a"), capsys, body=body, request_id="req-big")
    _, small = predict(token_for("alice", "tenant-a"), capsys, request_id="req-small")
    deliver(lines + small + [record_line("tenant-b", "bob", "b-0", 1_765_000_000_000)])
    s3 = demo.runtime.s3
    assert s3.list_objects_v2(Bucket=demo.bucket, Prefix="captures/tenant-a/")["KeyCount"] >= 1
    # When the operator purges tenant-a
    status, output = run("purge-history", "--tenant", "tenant-a")
    # Then no record, no captured object and no object version of tenant-a is left; tenant-b's stay
    assert status == 0 and "erased 2 history records" in output
    versions = s3.list_object_versions(Bucket=demo.bucket, Prefix="captures/tenant-a/")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")
    table = fresh_history_runtimes(monkeypatch).activity_table
    items = demo.runtime.dynamodb.scan(TableName=table)["Items"]
    history = [item for item in items if item["pk"]["S"].startswith("history#")]
    assert [item["tenant_id"]["S"] for item in history] == ["tenant-b"]


def test_deleting_a_tenant_leaves_nothing_of_it_behind(
    demo: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given tenant-a with capture on, a machine client, a large capture in S3 and records
    set_tenant(demo, monkeypatch, "tenant-a", TenantChange(capture=True))
    status, created = run("create-client", "tenant-a", "--json")
    assert status == 0
    client_id = json.loads(created)["client_id"]
    token = token_for("alice", "tenant-a")
    row = "[5.1, 3.5, 1.4, 0.2]"
    body = '{"instances": [' + (", " + " " * 250).join([row] * 1000) + "]}"
    _, lines = predict(token, capsys, body=body, request_id="req-big")
    _, more = predict(token_for(client_id, "tenant-a"), capsys, request_id="req-client")
    deliver(lines + more + [record_line("tenant-b", "bob", "b-0", 1_765_000_000_000)])
    # When the operator deletes it (asked to confirm first)
    assert run("delete-tenant", "tenant-a", "--confirm", "tenant-b")[0] == 1
    status, output = run("delete-tenant", "tenant-a", "--confirm", "tenant-a")
    # Then nothing of tenant-a is in either table or in the bucket, in any version
    assert status == 0 and "1 users, 1 machine clients, 2 history records" in output
    dynamodb = demo.runtime.dynamodb
    main = json.dumps(dynamodb.scan(TableName=demo.table_name)["Items"])
    assert "tenant-a" not in main and "alice" not in main and client_id not in main
    activity = fresh_history_runtimes(monkeypatch).activity_table
    items = dynamodb.scan(TableName=activity)["Items"]
    assert "tenant-a" not in json.dumps([item for item in items if not item["pk"]["S"].startswith("audit#")])
    # But the audit trail keeps who deleted it (append-only evidence; it expires by its TTL)
    trail = [item for item in items if item["pk"]["S"] == "audit#tenant-a"]
    assert "tenant.delete" in [item["action"]["S"] for item in trail]
    s3 = demo.runtime.s3
    for prefix in ("models/tenant-a/", "captures/tenant-a/"):
        versions = s3.list_object_versions(Bucket=demo.bucket, Prefix=prefix)
        assert not versions.get("Versions") and not versions.get("DeleteMarkers"), prefix
    # And tenant-b keeps its model and its history
    assert s3.list_objects_v2(Bucket=demo.bucket, Prefix="models/tenant-b/")["KeyCount"] >= 1
    assert "tenant-b" in json.dumps(dynamodb.scan(TableName=activity)["Items"])
    # And a line of tenant-a delivered late writes nothing (its mapping is gone)
    use_runtime(monkeypatch=monkeypatch)
    fresh_history_runtimes(monkeypatch)
    assert deliver(lines[:1]) == {"no-tenant": 1}
