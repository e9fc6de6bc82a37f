"""The local stack's stand-in for the model bucket's EventBridge events (local/upload_events.py):
each object created under uploads/ is delivered once, as AWS shapes the event, and nothing else is."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from local.upload_events import UploadPoller, object_created_event

BUCKET = "local-models-test"


def test_each_uploaded_object_version_is_delivered_once_with_the_event_eventbridge_sends() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        delivered: list[dict[str, Any]] = []
        poller = UploadPoller(s3, BUCKET, delivered.append)
        # Given an upload, a model object and a capture (only the first is an upload)
        first = s3.put_object(Bucket=BUCKET, Key="uploads/tenant-a/" + "a" * 32, Body=b"onnx")
        s3.put_object(Bucket=BUCKET, Key="models/tenant-a/x.onnx", Body=b"model")
        s3.put_object(Bucket=BUCKET, Key="captures/tenant-a/x", Body=b"rows")
        # When the poller runs twice
        assert poller.poll_once() == 1
        assert poller.poll_once() == 0
        # Then the upload was delivered once, shaped as S3's Object Created event on EventBridge
        (event,) = delivered
        assert event["source"] == "aws.s3" and event["detail-type"] == "Object Created"
        assert event["detail"]["bucket"] == {"name": BUCKET}
        assert event["detail"]["object"] == {
            "key": "uploads/tenant-a/" + "a" * 32,
            "size": 4,
            "version-id": first["VersionId"],
        }
        # And a second object for the same key (a replayed form) is a new delivery
        s3.put_object(Bucket=BUCKET, Key="uploads/tenant-a/" + "a" * 32, Body=b"again")
        assert poller.poll_once() == 1
        assert delivered[1]["detail"]["object"]["size"] == 5


def test_the_event_names_the_bucket_as_aws_does() -> None:
    event = object_created_event(BUCKET, "uploads/t/x", size=1)
    assert event["resources"] == [f"arn:aws:s3:::{BUCKET}"]
    assert "version-id" not in event["detail"]["object"]
