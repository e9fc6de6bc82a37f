"""Writes the items `model_runtime.store` reads: tenants with their pinned model, and users.

The operator's model file is trusted input here (the operator is uploading it); what this module
guarantees is that the mapping it writes pins exactly the bytes it uploaded, content-addressed.
Writes are ordered so a failure leaves nothing a request could reach half-written: the model
object goes up first, and the mapping that points at it is written last, in one conditional put.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Any

import joblib
import sklearn
from model_runtime import aws
from model_runtime.credentials import valid_username
from model_runtime.models import model_key, sha256_hex
from model_runtime.passwords import MAX_PASSWORD_CHARS, hash_password
from model_runtime.settings import get_settings
from model_runtime.store import ACTIVE, tenant_pk, user_pk

DEFAULT_MAX_BATCH = 1000
TENANT_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class OnboardingError(Exception):
    """Bad operator input; the message is one line meant for the operator."""


@dataclass(frozen=True, slots=True)
class ModelFacts:
    sha256: str
    n_features: int
    classes: list[Any]
    sklearn_version: str


def inspect_model(data: bytes) -> ModelFacts:
    """What the mapping must pin about a model file; refuses anything that is not a fitted classifier."""
    try:
        model = joblib.load(io.BytesIO(data))
    except Exception as error:
        raise OnboardingError("the file is not a joblib/pickle model") from error
    n_features = getattr(model, "n_features_in_", None)
    classes = getattr(model, "classes_", None)
    if not callable(getattr(model, "predict", None)) or not isinstance(n_features, int) or classes is None:
        raise OnboardingError("the model is not a fitted scikit-learn classifier")
    return ModelFacts(
        sha256_hex(data),
        n_features,
        [c.item() if hasattr(c, "item") else c for c in classes],
        sklearn.__version__,
    )


def validate_tenant_id(tenant_id: str) -> None:
    if not (1 <= len(tenant_id) <= 64 and set(tenant_id) <= TENANT_ID_CHARS and tenant_id[0] != "-"):
        raise OnboardingError("tenant ids are 1-64 lower-case letters, digits and '-'")


def put_model(tenant_id: str, data: bytes, max_batch: int, *, new_tenant: bool) -> ModelFacts:
    """Upload a model content-addressed and point the tenant's mapping at it."""
    validate_tenant_id(tenant_id)
    if not 1 <= max_batch <= 100_000:
        raise OnboardingError("max_batch must be between 1 and 100000")
    facts = inspect_model(data)
    settings = get_settings()
    key = model_key(tenant_id, facts.sha256)
    aws.s3().put_object(Bucket=settings.model_bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256")
    item = {
        "pk": {"S": tenant_pk(tenant_id)},
        "tenant_id": {"S": tenant_id},
        "model_key": {"S": key},
        "model_sha256": {"S": facts.sha256},
        "n_features": {"N": str(facts.n_features)},
        "max_batch": {"N": str(max_batch)},
        "classes_json": {"S": json.dumps(facts.classes)},
        "sklearn_version": {"S": facts.sklearn_version},
        "status": {"S": ACTIVE},
        "tokens_not_before": {"N": "0"},
        "updated_at": {"N": str(int(time.time()))},
    }
    client = aws.dynamodb()
    condition = "attribute_not_exists(pk)" if new_tenant else "attribute_exists(pk)"
    try:
        client.put_item(TableName=settings.table_name, Item=item, ConditionExpression=condition)
    except client.exceptions.ConditionalCheckFailedException:
        raise OnboardingError(
            f"tenant {tenant_id!r} already exists" if new_tenant else f"unknown tenant {tenant_id!r}"
        ) from None
    return facts


def create_user(username: str, password: str, tenant_id: str, roles: tuple[str, ...] = ("predict",)) -> None:
    if not valid_username(username):
        raise OnboardingError("usernames are 1-64 letters, digits or . _ @ + -")
    if not 8 <= len(password) <= MAX_PASSWORD_CHARS:
        raise OnboardingError(f"passwords are 8 to {MAX_PASSWORD_CHARS} characters")
    settings = get_settings()
    client = aws.dynamodb()
    tenant = client.get_item(TableName=settings.table_name, Key={"pk": {"S": tenant_pk(tenant_id)}})
    if "Item" not in tenant:
        raise OnboardingError(f"unknown tenant {tenant_id!r}")
    try:
        client.put_item(
            TableName=settings.table_name,
            Item={
                "pk": {"S": user_pk(username)},
                "username": {"S": username},
                "tenant_id": {"S": tenant_id},
                "password_hash": {"S": hash_password(password)},
                "roles": {"L": [{"S": role} for role in roles]},
                "status": {"S": ACTIVE},
                "created_at": {"N": str(int(time.time()))},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except client.exceptions.ConditionalCheckFailedException:
        raise OnboardingError(f"user {username!r} already exists") from None
