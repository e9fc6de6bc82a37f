"""Inference history (docs/history.md, decision 0013): records from predict's log lines, the
signed cursors that page through them, and how a record is shown to its caller.

predict writes each served request's record as properties of its one EMF line
(`model_runtime.tenant_metrics`); a CloudWatch Logs subscription hands those lines to the history
writer (functions/history_writer), which keys each record by caller and request id; the history
function (functions/history) reads a caller's own records back. The item design is
`model_runtime.table` (`HistoryRecord`, `HistoryStore`).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
import re
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from model_runtime.errors import BadRequest
from model_runtime.runtime import Runtime
from model_runtime.settings import Settings
from model_runtime.table import (
    DEFAULT_HISTORY_DAYS,
    MACHINE_CLIENT,
    MAX_HISTORY_DAYS,
    USER_CLIENT,
    HistoryRecord,
    HistoryStore,
)

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

DEFAULT_PAGE: Final = 20
MAX_PAGE: Final = 100
DAY_SECONDS: Final = 86_400
# Issued machine-client ids start with this (model_runtime.oauth.new_client_id); a username
# cannot hold '_' (model_runtime.credentials.USERNAME_PATTERN), so the two never meet.
MACHINE_CLIENT_PREFIX: Final = "mc_"
# A request id as API Gateway and Lambda write them (UUID-like); anything else is not one.
REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9-]{1,64}")
CURSOR_MAC_ALGORITHM: Final = "HMAC_SHA_256"
MAX_CURSOR_CHARS: Final = 512


def client_kind(subject: str) -> str:
    return MACHINE_CLIENT if subject.startswith(MACHINE_CLIENT_PREFIX) else USER_CLIENT


def iso_time(epoch_ms: int) -> str:
    """ISO 8601 UTC with milliseconds: fixed width, so text order is time order."""
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def retention_days(history_days: int) -> int:
    """A tenant's `history_days`, within 1..MAX_HISTORY_DAYS (0 or absent: the default)."""
    return min(max(history_days or DEFAULT_HISTORY_DAYS, 1), MAX_HISTORY_DAYS)


def record_from_line(line: Mapping[str, Any], history_days: int) -> HistoryRecord:
    """The record a served line (`"history":1`) carries; `KeyError`/`TypeError`/`ValueError` if
    it is not one. Only the named properties are read: nothing else in the line is stored."""
    timestamp = int(line["_aws"]["Timestamp"])
    capture = line.get("capture")
    if capture is not None and not isinstance(capture, dict):
        raise ValueError("capture is not an object")
    return HistoryRecord(
        tenant_id=_text(line["tenant"]),
        subject=_text(line["sub"], subject=True),
        request_id=_request_id(line["request_id"]),
        recorded_at=iso_time(timestamp),
        client_kind=client_kind(_text(line["sub"])),
        model_version=str(line.get("model_version", "")),
        rows=int(line["PredictedRows"]),
        latency_ms=float(line["Latency"]),
        probabilities=line.get("probabilities") is True,
        expires_at=timestamp // 1000 + retention_days(history_days) * DAY_SECONDS,
        capture_json=_compact(capture) if capture is not None else "",
        capture_parts=int(line.get("capture_parts", 0)),
        capture_bytes=int(line.get("capture_bytes", 0)),
    )


def _text(value: object, *, subject: bool = False) -> str:
    """A tenant id or subject; a subject never holds '#' (the key's separator: table.py)."""
    if not isinstance(value, str) or not value or (subject and "#" in value):
        raise ValueError("not a name")
    return value


def _request_id(value: object) -> str:
    if not isinstance(value, str) or not REQUEST_ID_PATTERN.fullmatch(value):
        raise ValueError("not a request id")
    return value


def _compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), allow_nan=False)


def capture_key(tenant_id: str, subject: str, request_id: str, part: int) -> str:
    """Where part `part` of a large capture is kept: under the tenant's own prefix."""
    return f"captures/{tenant_id}/{subject}/{request_id}/{part:04d}"


def part_key(line: Mapping[str, Any], tenant_id: str) -> str:
    """The object key of a capture part line (`"history":2`); `ValueError` if it names no caller,
    request or part that predict could have written."""
    subject = _text(line["sub"], subject=True)
    part = line["part"]
    if "/" in subject or type(part) is not int or not 0 <= part < 10_000:
        raise ValueError("not a capture part")
    return capture_key(tenant_id, subject, _request_id(line["request_id"]), part)


def capture_prefix(tenant_id: str, subject: str | None = None) -> str:
    return f"captures/{tenant_id}/" + (f"{subject}/" if subject is not None else "")


def shown(record: HistoryRecord) -> dict[str, Any]:
    """A record as its caller sees it (the API and the CLI): no key, no table or bucket name."""
    body: dict[str, Any] = {
        "request_id": record.request_id,
        "time": record.recorded_at,
        "sub": record.subject,
        "client_kind": record.client_kind,
        "model_version": record.model_version,
        "rows": record.rows,
        "latency_ms": record.latency_ms,
        "probabilities": record.probabilities,
    }
    if record.capture_json:
        capture = json.loads(record.capture_json)
        body["instances"] = capture.get("request", {}).get("instances")
        response = capture.get("response", {})
        body["predictions"] = response.get("predictions")
        if "probabilities" in response:
            body["probabilities_returned"] = response["probabilities"]
    elif record.capture_parts:
        # Too large for a record: kept in the object store for the tenant's operators.
        body["capture"] = {"stored_separately": True, "bytes": record.capture_bytes}
    return body


# --- cursors ---------------------------------------------------------------------------------
#
# A cursor is `<sort key>.<MAC>`, base64url. The sort key alone could only ever move within the
# caller's own records (the partition comes from the verified token), but an edited, forged or
# foreign cursor must still be refused: the MAC binds the sort key to tenant and caller, and is
# made and checked by KMS (an HMAC key: GenerateMac / VerifyMac), so no secret exists outside KMS.


class Cursors:
    def __init__(self, kms: KMSClient, key_id: str) -> None:
        self._kms = kms
        self._key_id = key_id

    @staticmethod
    def _message(tenant_id: str, subject: str, sort_key: str) -> bytes:
        return "\x00".join(("history-cursor-v1", tenant_id, subject, sort_key)).encode("utf-8")

    def issue(self, tenant_id: str, subject: str, sort_key: str) -> str:
        mac = self._kms.generate_mac(
            KeyId=self._key_id,
            MacAlgorithm=CURSOR_MAC_ALGORITHM,
            Message=self._message(tenant_id, subject, sort_key),
        )["Mac"]
        return f"{_b64(sort_key.encode('utf-8'))}.{_b64(mac)}"

    def open(self, tenant_id: str, subject: str, cursor: str) -> str:
        """The sort key `cursor` continues from; `BadRequest` for anything this caller was not given."""
        invalid = BadRequest("The cursor is not valid. Start again without it.")
        head, dot, tail = cursor.partition(".")
        if len(cursor) > MAX_CURSOR_CHARS or not dot or not head or not tail:
            raise invalid
        try:
            sort_key = _unb64(head).decode("utf-8")
            mac = _unb64(tail)
        except (binascii.Error, ValueError):
            raise invalid from None
        if _b64(sort_key.encode("utf-8")) != head or _b64(mac) != tail:
            raise invalid  # one spelling per cursor
        try:
            self._kms.verify_mac(
                KeyId=self._key_id,
                MacAlgorithm=CURSOR_MAC_ALGORITHM,
                Message=self._message(tenant_id, subject, sort_key),
                Mac=mac,
            )
        except self._kms.exceptions.KMSInvalidMacException:
            raise invalid from None
        return sort_key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- a container's state ------------------------------------------------------------------------


class HistoryRuntime(Runtime):
    """`Runtime` with the activity table, the capture bucket and the cursor key."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.activity_table = os.environ.get("ACTIVITY_TABLE_NAME", "").strip()
        self.cursor_key_id = os.environ.get("CURSOR_KEY_ID", "").strip()
        self.capture_bucket = os.environ.get("CAPTURE_BUCKET", "").strip()

    @cached_property
    def history(self) -> HistoryStore:
        return HistoryStore(self.dynamodb, self.activity_table)

    @cached_property
    def cursors(self) -> Cursors:
        return Cursors(self.kms, self.cursor_key_id)
