"""Where a model version lives in the model bucket, and its digest: the names predict, the
registry and the version listing share (a module of its own, so that predict's cold start
imports nothing else of `model_runtime.versions`)."""

from __future__ import annotations

import hashlib


def model_key(tenant_id: str, sha256: str, model_format: str = "onnx") -> str:
    """Content-addressed S3 key: a model version is never overwritten in place."""
    return f"models/{tenant_id}/{sha256}.{model_format}"


def record_key(tenant_id: str, sha256: str) -> str:
    """The registration record stored beside each model version."""
    return f"models/{tenant_id}/{sha256}.json"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
