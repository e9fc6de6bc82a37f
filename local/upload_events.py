"""The local stack's stand-in for the model bucket's "Object Created" events (EventBridge).

On AWS, S3 sends an EventBridge event for every object created in the model bucket, and a rule
(template.yaml, RegisterFunction's `UploadCreated` event) invokes the registering function for
keys under `uploads/`. moto's server sends no event, so `UploadPoller` lists the prefix every
`interval` seconds and invokes the register handler in this process with the event AWS would send
(`object_created_event`), once per object version. The handler deletes each object it is given,
so the listing stays short.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

UPLOAD_PREFIX = "uploads/"


def object_created_event(
    bucket: str, key: str, *, size: int, version_id: str | None = None, region: str = "us-east-1"
) -> dict[str, Any]:
    """S3's "Object Created" event as EventBridge delivers it (the fields the handler reads, and
    the envelope around them)."""
    found: dict[str, Any] = {"key": key, "size": size}
    if version_id:
        found["version-id"] = version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": found, "reason": "PostObject"},
    }


class UploadPoller:
    """Invokes `deliver(event)` for each new object under `uploads/` of `bucket`."""

    def __init__(
        self, s3: Any, bucket: str, deliver: Callable[[dict[str, Any]], object], interval: float = 0.5
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.deliver = deliver
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upload-poller", daemon=True)
        self._seen: set[tuple[str, str]] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def poll_once(self) -> int:
        """Deliver each object (version) not delivered before; returns how many were."""
        delivered = 0
        pages = self.s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=UPLOAD_PREFIX
        )
        for page in pages:
            for version in page.get("Versions", []):
                if not version.get("IsLatest", True):
                    continue
                version_id = str(version.get("VersionId") or "")
                seen = (version["Key"], "" if version_id == "null" else version_id)  # "null": unversioned
                if seen in self._seen:
                    continue
                self._seen.add(seen)
                event = object_created_event(
                    self.bucket, version["Key"], size=int(version["Size"]), version_id=seen[1] or None
                )
                self.deliver(event)
                delivered += 1
        return delivered

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception as error:  # the stack keeps serving; the next poll tries again
                print(f"upload poller: {type(error).__name__}", flush=True)
