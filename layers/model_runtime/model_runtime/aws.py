"""boto3 clients, created once per container.

Endpoints come from boto3's own configuration (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, ...),
so the same code talks to AWS, to moto's server or to moto in-process. Tests call
`reset_clients()` after changing the environment.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

# Fail fast: a request that waits on a slow dependency costs the tenant more than a 503 and a retry.
_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"max_attempts": 2, "mode": "standard"},
)


@cache
def _session() -> boto3.session.Session:
    # One session for every client: each new Session loads botocore's data files again.
    return boto3.session.Session()


@cache
def _client(service: str) -> Any:
    return _session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def dynamodb() -> DynamoDBClient:
    return _client("dynamodb")  # type: ignore[no-any-return]


def s3() -> S3Client:
    return _client("s3")  # type: ignore[no-any-return]


def kms() -> KMSClient:
    return _client("kms")  # type: ignore[no-any-return]


def reset_clients() -> None:
    _client.cache_clear()
    _session.cache_clear()
