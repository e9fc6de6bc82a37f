"""Inference history: predict's record lines, the writer, and each caller reading back their own.

A record is visible to its caller only: not to another user of the same tenant, not to a user of
another tenant, not to a machine client. Cursors are signed for their caller; a record holds no
token or password; redelivery writes nothing new.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from model_runtime.table import HistoryStore, TenantChange
from model_runtime.tenant_metrics import capture_text, history_tail, served_line

from functions.history_writer import app as writer_app
from functions.history_writer.app import HistoryNotWritten
from tests.history_support import deliver, fresh_history_runtimes, get_history, predict
from tests.support import (
    ALICE,
    FakeLambdaContext,
    Stack,
    assert_problem,
    response_header,
    token_for,
    use_runtime,
)

MACHINE = "mc_0123456789abcdef01234567"


@pytest.fixture
def history(demo: Stack, monkeypatch: pytest.MonkeyPatch) -> HistoryStore:
    return fresh_history_runtimes(monkeypatch).history


def record_line(tenant: str, sub: str, request_id: str, timestamp: int, rows: int = 1) -> str:
    """A served line as predict writes it, at a chosen time."""
    tail = history_tail(request_id, sub, "0123456789ab", probabilities=False)
    return served_line(
        "InferenceApi", "predict", tenant, timestamp=timestamp, latency_ms=0.4, rows=rows, history=tail
    )


def records(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["statusCode"] == 200, response["body"]
    found: list[dict[str, Any]] = json.loads(response["body"])["records"]
    return found


def set_tenant(demo: Stack, monkeypatch: pytest.MonkeyPatch, tenant_id: str, change: TenantChange) -> None:
    demo.runtime.table.update_tenant(tenant_id, change, int(time.time()))
    use_runtime(monkeypatch=monkeypatch)  # a fresh container reads the new mapping
    fresh_history_runtimes(monkeypatch)


def test_a_prediction_answers_with_its_request_id_and_logs_its_record_in_its_one_line(
    history: HistoryStore, alice_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When alice predicts
    response, lines = predict(alice_token, capsys, request_id="req-0001")
    # Then the answer names the request, and its one metrics line is also its record
    assert response["statusCode"] == 200
    assert response_header(response, "X-Request-Id") == "req-0001"
    (line,) = lines
    document = json.loads(line)
    assert document["request_id"] == "req-0001" and document["sub"] == "alice"
    assert document["tenant"] == "tenant-a" and document["PredictedRows"] == 2
    assert document["probabilities"] is False and len(document["model_version"]) == 12
    # And nothing of the request's headers, token or address is in it
    assert alice_token not in line and "203.0.113.10" not in line and "Bearer" not in line
    assert "capture" not in document


def test_a_refused_prediction_leaves_no_record(
    history: HistoryStore, alice_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When alice sends rows of the wrong shape
    response, lines = predict(alice_token, capsys, body='{"instances": [[1, 2]]}')
    # Then it is refused, and no history line is written
    assert response["statusCode"] == 400
    assert lines == []


def test_a_record_is_listed_for_its_caller_and_no_one_else(
    history: HistoryStore, alice_token: str, bob_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given alice's prediction, delivered to the writer
    _, lines = predict(alice_token, capsys, request_id="req-alice-1")
    assert deliver(lines) == {"written": 1}
    # When alice lists her history, and reads the record by its id
    (record,) = records(get_history(alice_token))
    one = get_history(alice_token, request_id="req-alice-1")
    # Then it is hers, a user's, with its figures
    assert record["request_id"] == "req-alice-1" and record["sub"] == "alice"
    assert record["client_kind"] == "user" and record["rows"] == 2
    assert record["time"].endswith("Z") and "T" in record["time"]
    assert json.loads(one["body"]) == record
    # And another user of her tenant, a user of another tenant and a machine client of her
    # tenant see none of it: an empty list, and the same 404 as a request that never was
    others = [token_for("carol", "tenant-a"), bob_token, token_for(MACHINE, "tenant-a")]
    for token in others:
        assert records(get_history(token)) == []
        theirs = get_history(token, request_id="req-alice-1")
        never = get_history(token, request_id="req-never-was")
        assert_problem(theirs, 404)
        assert theirs["body"] == never["body"]


def test_a_machine_clients_record_is_its_own_and_says_machine(
    history: HistoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a machine client's prediction
    token = token_for(MACHINE, "tenant-a")
    _, lines = predict(token, capsys, request_id="req-machine")
    deliver(lines)
    # Then the client reads it back as a machine client's, and alice does not see it
    (record,) = records(get_history(token))
    assert record["client_kind"] == "machine" and record["sub"] == MACHINE
    assert records(get_history(token_for("alice", "tenant-a"))) == []


def test_redelivered_lines_write_no_duplicate(
    history: HistoryStore, alice_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a delivered prediction
    _, lines = predict(alice_token, capsys, request_id="req-twice")
    assert deliver(lines) == {"written": 1}
    # When CloudWatch Logs delivers the same batch again
    outcome = deliver(lines + lines)
    # Then nothing new is written
    assert outcome == {"duplicate": 2}
    assert len(history.records("tenant-a")) == 1


def test_pagination_walks_every_record_once_newest_first(history: HistoryStore, alice_token: str) -> None:
    # Given seven records of alice, delivered out of order
    base = 1_765_000_000_000
    lines = [record_line("tenant-a", "alice", f"req-{i:02d}", base + i * 1000) for i in (3, 0, 6, 1, 5, 2, 4)]
    deliver(lines)
    # When she walks her history three at a time
    seen: list[str] = []
    query: dict[str, str] = {"limit": "3"}
    pages = 0
    while True:
        body = json.loads(get_history(alice_token, query=query)["body"])
        seen += [record["request_id"] for record in body["records"]]
        pages += 1
        if "next_cursor" not in body:
            break
        query = {"limit": "3", "cursor": body["next_cursor"]}
    # Then every record comes once, newest first
    assert seen == [f"req-{i:02d}" for i in range(6, -1, -1)]
    assert pages == 3


def test_the_default_page_is_twenty(history: HistoryStore, alice_token: str) -> None:
    deliver([record_line("tenant-a", "alice", f"req-{i:02d}", 1_765_000_000_000 + i) for i in range(25)])
    body = json.loads(get_history(alice_token)["body"])
    assert len(body["records"]) == 20 and "next_cursor" in body


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1e2", "", "٣", "20.0"])
def test_a_limit_out_of_range_is_a_400(history: HistoryStore, alice_token: str, limit: str) -> None:
    response = get_history(alice_token, query={"limit": limit})
    assert_problem(response, 400)
    assert limit not in json.loads(response["body"])["detail"] or limit in ("0", "")


def first_cursor(token: str) -> str:
    cursor: str = json.loads(get_history(token, query={"limit": "1"})["body"])["next_cursor"]
    return cursor


def test_an_edited_forged_or_foreign_cursor_is_a_400_that_reveals_nothing(
    history: HistoryStore, alice_token: str
) -> None:
    # Given records of alice and of carol (same tenant), and a cursor each
    base = 1_765_000_000_000
    deliver([record_line("tenant-a", "alice", f"a-{i}", base + i) for i in range(3)])
    deliver([record_line("tenant-a", "carol", f"c-{i}", base + i) for i in range(3)])
    carol = token_for("carol", "tenant-a")
    alices, carols = first_cursor(alice_token), first_cursor(carol)
    head, _, mac = alices.partition(".")
    import base64  # noqa: PLC0415

    later = base64.urlsafe_b64encode(b"9999-12-31T00:00:00.000Z#x").rstrip(b"=").decode()
    tampered = [
        carols,  # another user's
        f"{later}.{mac}",  # another position, alice's MAC
        f"{head}.{'A' * len(mac)}",  # a forged MAC
        f"{head}.{mac[:-1]}{'B' if mac[-1] != 'B' else 'C'}",  # one character off
        head,  # no MAC
        "not-a-cursor",
        "..",
        "x" * 5000,
        f"{head}=.{mac}",  # another spelling of the same bytes
    ]
    for cursor in tampered:
        # When alice pages with it
        response = get_history(alice_token, query={"cursor": cursor})
        # Then it is a 400 problem, never a page, never a 5xx, naming nothing of the cursor
        assert_problem(response, 400)
        assert "records" not in response["body"] and cursor[:20] not in response["body"]
    # And alice's own cursor still works, and carol's works for carol
    assert len(records(get_history(alice_token, query={"cursor": alices}))) == 2
    assert [r["request_id"] for r in records(get_history(carol, query={"cursor": carols}))] == ["c-1", "c-0"]


def test_a_cursor_of_another_tenant_is_a_400(history: HistoryStore, bob_token: str, alice_token: str) -> None:
    deliver([record_line("tenant-b", "alice", f"b-{i}", 1_765_000_000_000 + i) for i in range(2)])
    deliver([record_line("tenant-a", "alice", f"a-{i}", 1_765_000_000_000 + i) for i in range(2)])
    # alice of tenant-b (same name, other tenant): her cursor is not alice of tenant-a's
    foreign = first_cursor(token_for("alice", "tenant-b"))
    assert_problem(get_history(alice_token, query={"cursor": foreign}), 400)


def test_the_authorizers_tenant_must_be_the_tokens(history: HistoryStore, alice_token: str) -> None:
    assert_problem(get_history(alice_token, tenant="tenant-b"), 401)


def test_no_token_is_a_401(history: HistoryStore) -> None:
    assert_problem(get_history("not-a-token"), 401)


def test_capture_off_stores_no_rows_or_predictions(
    history: HistoryStore, alice_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines = predict(alice_token, capsys)
    deliver(lines)
    (record,) = history.records("tenant-a")
    assert record.capture_json == "" and record.capture_parts == 0
    shown = records(get_history(alice_token))[0]
    assert "instances" not in shown and "predictions" not in shown


def test_capture_on_stores_the_rows_and_predictions(
    demo: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given tenant-a captures
    set_tenant(demo, monkeypatch, "tenant-a", TenantChange(capture=True))
    token = token_for("alice", "tenant-a")
    # When alice predicts with probabilities
    body = '{"instances": [[5.1, 3.5, 1.4, 0.2]], "parameters": {"probabilities": true}}'
    response, lines = predict(token, capsys, body=body, request_id="req-cap")
    deliver(lines)
    # Then her record holds her rows and the answer she got
    record = json.loads(get_history(token, request_id="req-cap")["body"])
    answer = json.loads(response["body"])
    assert record["instances"] == [[5.1, 3.5, 1.4, 0.2]]
    assert record["predictions"] == answer["predictions"]
    assert record["probabilities_returned"] == answer["probabilities"]
    assert record["probabilities"] is True


def test_a_capture_too_large_for_an_item_goes_to_s3_under_the_tenants_prefix(
    demo: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given tenant-a captures, and alice sends 1000 rows spaced out (over 192 KiB captured)
    set_tenant(demo, monkeypatch, "tenant-a", TenantChange(capture=True))
    token = token_for("alice", "tenant-a")
    row = "[5.123456789012345, 3.523456789012345, 1.423456789012345, 0.223456789012345]"
    body = '{"instances": [' + (", " + " " * 200).join([row] * 1000) + "]}"
    response, lines = predict(token, capsys, body=body, request_id="req-big")
    assert response["statusCode"] == 200
    # When the lines are delivered
    outcome = deliver(lines)
    # Then the parts are objects under the tenant's own prefix, encrypted with KMS, and the
    # record says the capture is stored separately
    assert outcome["written"] == 1 and outcome["part"] == len(lines) - 1 >= 1
    s3 = demo.runtime.s3
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=demo.bucket, Prefix="captures/")["Contents"]]
    assert keys and all(key.startswith("captures/tenant-a/alice/req-big/") for key in keys)
    head = s3.head_object(Bucket=demo.bucket, Key=keys[0])
    assert head["ServerSideEncryption"] == "aws:kms"
    rebuilt = b"".join(s3.get_object(Bucket=demo.bucket, Key=key)["Body"].read() for key in sorted(keys))
    assert json.loads(rebuilt)["response"] == json.loads(response["body"])
    record = json.loads(get_history(token, request_id="req-big")["body"])
    assert record["capture"] == {"stored_separately": True, "bytes": len(rebuilt)}


def test_no_token_or_password_is_in_any_stored_item_or_log_line(
    demo: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given capture on, and alice's token and password
    set_tenant(demo, monkeypatch, "tenant-a", TenantChange(capture=True))
    password = ALICE[1]
    token = token_for("alice", "tenant-a")
    # When she predicts, the lines are delivered and she reads her history
    capsys.readouterr()
    _, lines = predict(token, capsys, request_id="req-secret")
    deliver(lines)
    get_history(token)
    get_history(token, request_id="req-secret")
    logged = capsys.readouterr()
    # Then neither is in any line logged, nor in any item of the activity table
    scanned = demo.runtime.dynamodb.scan(TableName=fresh_history_runtimes(monkeypatch).activity_table)
    stored = json.dumps(scanned["Items"])
    assert scanned["Items"]
    for text in ["\n".join(lines), logged.out, logged.err, stored]:
        assert token not in text and password not in text
        assert token.split(".")[2] not in text  # not even its signature


def test_a_deleted_tenant_gets_no_new_record(history: HistoryStore, demo: Stack) -> None:
    demo.runtime.dynamodb.delete_item(TableName=demo.table_name, Key={"pk": {"S": "tenant#tenant-a"}})
    assert deliver([record_line("tenant-a", "alice", "req-late", 1_765_000_000_000)]) == {"no-tenant": 1}
    assert history.records("tenant-a") == []


def test_lines_that_are_not_history_records_are_skipped(history: HistoryStore) -> None:
    outcome = deliver(["START RequestId: x", '{"level":"INFO"}', '{"history":3}', "[1]"])
    assert outcome == {"skipped": 4}
    assert history.records("tenant-a") == []


def test_an_unreadable_record_fails_the_batch_after_the_rest_is_stored(history: HistoryStore) -> None:
    # Given a batch with a good record and a history line missing its fields
    lines = [
        record_line("tenant-a", "alice", "req-good", 1_765_000_000_000),
        '{"history":1,"tenant":"tenant-a"}',
    ]
    # When it is delivered, it fails (Lambda retries it, then the dead-letter queue and its alarm)
    with pytest.raises(HistoryNotWritten):
        deliver(lines)
    # And the good record is stored once, also when the batch comes again
    with pytest.raises(HistoryNotWritten):
        deliver(lines)
    assert [record.request_id for record in history.records("tenant-a")] == ["req-good"]


def test_a_dependency_failure_fails_the_batch(history: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given DynamoDB refusing writes
    def refuse(_: object) -> bool:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")

    monkeypatch.setattr(writer_app.runtime.history, "put_new", refuse)
    # When a record is delivered, the batch fails: it is retried, never dropped in silence
    with pytest.raises(HistoryNotWritten):
        deliver([record_line("tenant-a", "alice", "req-x", 1_765_000_000_000)])


def test_cloudwatch_logs_control_messages_write_nothing(history: HistoryStore) -> None:
    document = {
        "messageType": "CONTROL_MESSAGE",
        "logEvents": [{"id": "0", "timestamp": 0, "message": "CWL"}],
    }
    event = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()}}
    assert writer_app.lambda_handler(event, FakeLambdaContext()) == {}


def test_records_expire_after_the_tenants_history_days(demo: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    set_tenant(demo, monkeypatch, "tenant-a", TenantChange(history_days=7))
    store = fresh_history_runtimes(monkeypatch).history
    deliver([record_line("tenant-a", "alice", "req-ttl", 1_765_000_000_000)])
    (record,) = store.records("tenant-a")
    assert record.expires_at == 1_765_000_000 + 7 * 86_400
    assert record.recorded_at == "2025-12-06T05:46:40.000Z"


def test_capture_text_is_the_request_and_the_answer(history: HistoryStore) -> None:
    inline, parts = capture_text('{"instances":[[1]]}', '{"predictions":[2]}')
    assert json.loads("{" + inline[1:] + "}")["capture"] == {
        "request": {"instances": [[1]]},
        "response": {"predictions": [2]},
    }
    assert parts == []


@pytest.mark.parametrize(
    "fields",
    [
        {"sub": "../tenant-b", "request_id": "r-1", "part": 0},
        {"sub": "alice", "request_id": "../../models/tenant-b/x", "part": 0},
        {"sub": "alice", "request_id": "r-1", "part": "0/../x"},
    ],
)
def test_a_capture_part_cannot_name_a_key_outside_its_callers_prefix(
    history: HistoryStore, demo: Stack, fields: dict[str, Any]
) -> None:
    line = json.dumps({"history": 2, "tenant": "tenant-a", **fields, "data": "AAAA"})
    with pytest.raises(HistoryNotWritten):
        deliver([line])
    listed = demo.runtime.s3.list_objects_v2(Bucket=demo.bucket, Prefix="captures/")
    assert listed["KeyCount"] == 0
