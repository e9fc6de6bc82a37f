"""The fault drill's proxy (local/fault_drill.py) in front of a real `moto_server`, spoken to by
botocore as the functions speak to AWS: it forwards faithfully, answers a faulted service's calls
as AWS does when it throttles, and drops the connection once the endpoint is gone."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.fault_drill import FaultProxy, start_moto, stop_process

pytestmark = pytest.mark.blackbox

# One attempt: each answer is seen as the proxy gave it, not after botocore's retries.
ONE_ATTEMPT = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=10)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[FaultProxy, Any]]:
    moto, moto_url = start_moto(tmp_path / "moto.log")
    running = FaultProxy(moto_url).start()
    try:
        yield running, moto
    finally:
        running.stop()
        stop_process(moto, signal.SIGTERM)


def client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=ONE_ATTEMPT,
    )


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    code: str = raised.value.response["Error"]["Code"]
    return code


def test_the_proxy_forwards_throttles_one_service_at_a_time_and_drops_a_dead_endpoint(
    proxy: tuple[FaultProxy, Any],
) -> None:
    # (one test: one moto_server start, about 8 s)
    running, moto = proxy
    dynamodb, s3 = client("dynamodb", running.url), client("s3", running.url)
    # Given a table and an object created through the proxy
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="k", Body=b"model bytes")
    # Then they read back as sent (GET, and HEAD with its length and no body)
    assert dynamodb.list_tables()["TableNames"] == ["t"]
    assert s3.get_object(Bucket="models", Key="k")["Body"].read() == b"model bytes"
    assert s3.head_object(Bucket="models", Key="k")["ContentLength"] == len(b"model bytes")
    # When DynamoDB is throttled, its calls get DynamoDB's throttling error, and S3's go through
    running.fault = "dynamodb-throttling"
    assert error_code(dynamodb.list_tables) == "ProvisionedThroughputExceededException"
    assert s3.get_object(Bucket="models", Key="k")["Body"].read() == b"model bytes"
    # When S3 slows down, its calls get S3's SlowDown, and DynamoDB's go through
    running.fault = "s3-slowdown"
    assert error_code(lambda: s3.get_object(Bucket="models", Key="k")) == "SlowDown"
    assert dynamodb.list_tables()["TableNames"] == ["t"]
    # When moto is killed (the proxy stays up, without a fault)
    running.fault = None
    moto.kill()
    moto.wait()
    # Then a call fails as botocore's connection failure, not as an answer from AWS
    with pytest.raises(BotoCoreError):
        dynamodb.list_tables()
