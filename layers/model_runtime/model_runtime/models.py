"""Tenant models: fetched from S3, integrity-checked, loaded, and kept in a warm-container cache.

Unpickling runs code, so bytes are hashed and compared with the SHA-256 pinned in the tenant's
mapping *before* `joblib.load` sees them, and a model recorded for another scikit-learn version is
refused before it is loaded (never a silent `InconsistentVersionWarning`). A refusal is a
`ModelUnavailable` for the client and a security log line plus metric for the operator.

The cache is keyed by (tenant, digest): a new version has a new key and is never served stale,
and the old one ages out. It is bounded by the size of the model files it holds.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NoReturn

import joblib
import sklearn
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from sklearn.exceptions import InconsistentVersionWarning

from model_runtime import aws
from model_runtime.errors import ModelUnavailable
from model_runtime.settings import get_settings
from model_runtime.store import Tenant

logger = Logger(child=True)
metrics = Metrics()

# Every row reaching a model has been checked finite by `payload.validate_instances`; this skips
# scikit-learn's second scan of the same array on each predict.
sklearn.set_config(assume_finite=True)


def model_key(tenant_id: str, sha256: str) -> str:
    """Content-addressed S3 key: a model version is never overwritten in place."""
    return f"models/{tenant_id}/{sha256}.pkl"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_verified(tenant: Tenant, data: bytes) -> Any:
    """Deserialize `data` only if it is exactly the model the tenant's mapping pins."""
    if not hmac.compare_digest(sha256_hex(data), tenant.model_sha256):
        _refuse(tenant, "integrity", "model bytes do not match the pinned SHA-256")
    if tenant.sklearn_version != sklearn.__version__:
        _refuse(tenant, "sklearn_version", "model was registered for another scikit-learn version")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        return joblib.load(io.BytesIO(data))


def _refuse(tenant: Tenant, reason: str, message: str) -> NoReturn:
    logger.error(
        message,
        extra={"security_event": "model_refused", "reason": reason, "tenant_id": tenant.tenant_id},
    )
    metrics.add_metric(name="ModelIntegrityFailure", unit=MetricUnit.Count, value=1)
    raise ModelUnavailable()


def fetch_model_object(tenant: Tenant) -> Any:
    """The S3 GetObject response for the tenant's model: its length is known before its bytes."""
    s3 = aws.s3()
    try:
        return s3.get_object(Bucket=get_settings().model_bucket, Key=tenant.model_key)
    except s3.exceptions.NoSuchKey:
        _refuse(tenant, "missing", "model object is missing")


@dataclass(slots=True)
class _Entry:
    model: Any
    size: int


class ModelCache:
    """Least-recently-used models, bounded by the total size of their files.

    A file's size is a stand-in for the loaded model's memory; for scikit-learn estimators the
    two are close, since a pickle is mostly the estimator's numpy arrays.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.total_bytes = 0
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._entries

    def get(self, tenant: Tenant) -> Any:
        key = (tenant.tenant_id, tenant.model_sha256)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry.model  # hits = Predictions - ModelCacheMiss: no metric on the warm path

        return self._load(key, tenant)

    def _load(self, key: tuple[str, str], tenant: Tenant) -> Any:
        metrics.add_metric(name="ModelCacheMiss", unit=MetricUnit.Count, value=1)
        started = time.perf_counter()
        response = fetch_model_object(tenant)
        size = int(response["ContentLength"])
        # Make room before reading: the fetched bytes and the unpickled model then never sit on
        # top of a full cache, which keeps the peak near the bound.
        self._make_room(key[0], size)
        model = load_verified(tenant, response["Body"].read())
        metrics.add_metric(
            name="ModelLoadMs", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1e3
        )
        if size <= self.max_bytes:
            self._entries[key] = _Entry(model, size)
            self.total_bytes += size
        else:
            logger.warning("model larger than the cache bound; served uncached")
        return model

    def _make_room(self, tenant_id: str, size: int) -> None:
        # Older versions of this tenant's model will never be asked for again.
        for stale in [k for k in self._entries if k[0] == tenant_id]:
            self._evict(stale)
        if size > self.max_bytes:
            return  # emptying the cache for a model it cannot hold helps no one
        while self._entries and self.total_bytes + size > self.max_bytes:
            self._evict(next(iter(self._entries)))

    def _evict(self, key: tuple[str, str]) -> None:
        self.total_bytes -= self._entries.pop(key).size


@lru_cache(maxsize=1)
def model_cache() -> ModelCache:
    """This container's cache; tests start a fresh one with `model_cache.cache_clear()`."""
    return ModelCache(get_settings().model_cache_bytes)
