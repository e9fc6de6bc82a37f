"""Tenant models: fetched from S3, integrity-checked, parsed, and kept in a warm-container cache.

Models are served in formats that cannot run code when read: ONNX, parsed and run by ONNX
Runtime, and (where the template attaches the scikit-learn layer) skops files of audited
scikit-learn estimators (`model_serving.sklearn_models`). No pickle is ever deserialized here:
an old mapping that still pins a pickle is refused like a tampered one.

The bytes are hashed and compared with the SHA-256 pinned in the tenant's mapping *before*
anything parses them. A refusal is a `ModelUnavailable` for the client and a security log line
plus metric for the operator; the refusal is remembered per (tenant, digest) for the mapping
TTL, so a broken registration costs one S3 read and one log line per window, not one per request.

The cache is keyed by (tenant, digest): a new version has a new key and is never served stale,
and the old one ages out. It is bounded by the size of the model files it holds. `PredictRuntime` is
predict's container state: `runtime.Runtime` plus the model cache (it lives here, so login and the
authorizer never import numpy or ONNX Runtime).
"""

from __future__ import annotations

import hmac
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from model_runtime.errors import BadRequest, Forbidden, ModelUnavailable
from model_runtime.model_objects import model_key, sha256_hex  # noqa: F401 - re-exported (the CLI, tests)
from model_runtime.runtime import Runtime
from model_runtime.settings import AUTHORIZER, PER_TENANT, Settings
from model_runtime.table import CLASSIFICATION, REGRESSION, Table, Tenant
from model_runtime.tenant_credentials import ForeignSession, TenantData, TenantDataClients

from model_serving.run_budget import run_session

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)
metrics = Metrics()

ONNX = "onnx"
SKOPS = "skops"
SERVED_FORMATS = (ONNX, SKOPS)


class ServedModel(Protocol):
    """What predict needs from a model, whatever its format."""

    @property
    def n_features(self) -> int: ...

    @property
    def has_probabilities(self) -> bool: ...

    @property
    def input_precision(self) -> np.dtype[Any]:
        """What the model computes in: its rows' range (`model_serving.answers.INPUT_LIMITS`)."""
        ...

    def predict(self, rows: npt.NDArray[np.float64]) -> list[Any]: ...

    def predict_proba(self, rows: npt.NDArray[np.float64]) -> list[list[float]]: ...


_LABEL_TYPES = ("tensor(int64)", "tensor(string)")
_VALUE_TYPES = ("tensor(float)", "tensor(double)")


def onnx_outputs(session: ort.InferenceSession) -> tuple[str, str | None]:
    """The graph's prediction output and its probabilities output, if it has one. A classifier
    predicts with its label output (int64 or string, one value a row) and gives probabilities as a
    float or double output of one column per class; a graph without a label output is a regressor,
    whose one float or double output holds its values. Registration checked the same rule."""
    outputs = session.get_outputs()
    label = next((o.name for o in outputs if o.type in _LABEL_TYPES), None)
    if label is None:
        values = [o.name for o in outputs if o.type in _VALUE_TYPES]
        if len(values) != 1:
            raise ValueError("the graph has no label output, nor one output of values")
        return values[0], None
    probabilities = next((o.name for o in outputs if o.type in _VALUE_TYPES and len(o.shape) == 2), None)
    return label, probabilities


def onnx_session(data: bytes) -> ort.InferenceSession:
    """One thread: Lambda gives predict about one vCPU, and a thread pool only adds overhead."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # No per-session memory arena: ~1 MB per cached model, for batches of at most a few MB.
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    # Registration refuses external data (registry/onnx_graph.py); should a graph hold some all
    # the same, ONNX Runtime looks for it in this empty directory, never the working directory.
    options.add_session_config_entry(EXTERNAL_DATA_FOLDER_KEY, _empty_directory())
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


# onnxruntime_session_options_config_keys.h: where a model loaded from bytes finds its external
# data. Unset, it is the working directory (the operator's at registration, /var/task in Lambda).
EXTERNAL_DATA_FOLDER_KEY = "session.model_external_initializers_file_folder_path"


@cache
def _empty_directory() -> str:
    """A new empty directory, this process's own (mode 0700): no external data file is in it."""
    return tempfile.mkdtemp(prefix="no-external-data-")


class OnnxModel:
    """An ONNX classifier or regressor run by ONNX Runtime: parsing a graph runs no Python code.

    The graph's input type is the model's precision: float32, or float64 for trees whose split
    thresholds float32 would round (registry/families.py), fed the request's float64 rows as
    they are."""

    def __init__(self, data: bytes) -> None:
        self._session = onnx_session(data)
        first = self._session.get_inputs()[0]
        self._input = first.name
        self._label, self._probabilities = onnx_outputs(self._session)
        # Rows are checked against this precision's range before they are cast (answers.py).
        self._precision = np.dtype(np.float64 if first.type == "tensor(double)" else np.float32)
        prediction = next(o for o in self._session.get_outputs() if o.name == self._label)
        self.task = REGRESSION if prediction.type in _VALUE_TYPES else CLASSIFICATION

    def _feed(self, rows: npt.NDArray[np.float64]) -> dict[str, Any]:
        return {self._input: rows.astype(self._precision, copy=False)}

    @property
    def n_features(self) -> int:
        return int(self._session.get_inputs()[0].shape[1])

    @property
    def has_probabilities(self) -> bool:
        return self._probabilities is not None

    @property
    def input_precision(self) -> np.dtype[Any]:
        return self._precision

    def predict(self, rows: npt.NDArray[np.float64]) -> list[Any]:
        """Labels, or a regressor's values: one number a row (a list a row for multi-output)."""
        predictions = run_session(self._session, [self._label], self._feed(rows))[0]
        if self.task == REGRESSION and predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        return list(predictions.tolist())

    def predict_proba(self, rows: npt.NDArray[np.float64]) -> list[list[float]]:
        if self._probabilities is None:
            raise BadRequest("This model does not give probabilities.")
        probabilities = run_session(self._session, [self._probabilities], self._feed(rows))[0]
        return [[float(p) for p in row] for row in probabilities.tolist()]


def load_verified(tenant: Tenant, data: bytes) -> ServedModel:
    """Parse `data` only if it is exactly the model the tenant's mapping pins, in a served format."""
    if not hmac.compare_digest(sha256_hex(data), tenant.model_sha256):
        _refuse(tenant, "integrity", "model bytes do not match the pinned SHA-256")
    if tenant.model_format == ONNX:
        try:
            return OnnxModel(data)
        except Exception:  # ONNX Runtime raises its own types for a graph it cannot run
            _refuse(tenant, "unreadable", "ONNX Runtime could not load the pinned model")
    if tenant.model_format == SKOPS:
        return _load_skops(tenant, data)
    _refuse(tenant, "format", f"model format {tenant.model_format!r} is never served; re-register it")


def _load_skops(tenant: Tenant, data: bytes) -> ServedModel:
    try:
        from model_serving import sklearn_models  # noqa: PLC0415 (needs the scikit-learn layer)
    except ImportError:
        _refuse(tenant, "runtime_missing", "skops model but the scikit-learn layer is not attached")
    if tenant.sklearn_version != sklearn_models.sklearn_version():
        _refuse(tenant, "sklearn_version", "model was registered for another scikit-learn version")
    try:
        return sklearn_models.load_skops(data)
    except sklearn_models.UnsafeModel as error:
        _refuse(tenant, "unsafe_type", str(error))


def _refuse(tenant: Tenant, reason: str, message: str) -> NoReturn:
    logger.error(
        message,
        extra={"security_event": "model_refused", "reason": reason, "tenant_id": tenant.tenant_id},
    )
    metrics.add_metric(name="ModelIntegrityFailure", unit=MetricUnit.Count, value=1)
    raise ModelUnavailable()


def fetch_model_object(s3: S3Client, bucket: str, tenant: Tenant) -> Any:
    """The S3 GetObject response for the tenant's model: its length is known before its bytes.

    Without s3:ListBucket (predict has none), S3 answers a missing key with 403 AccessDenied, not
    404 NoSuchKey: both are a missing model (docs/decisions/0007-access-denied-is-a-missing-model.md).
    """
    try:
        return s3.get_object(Bucket=bucket, Key=tenant.model_key)
    except s3.exceptions.NoSuchKey:
        _refuse(tenant, "missing", "model object is missing")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "AccessDenied":
            raise
        _refuse(tenant, "missing", "model object is missing or not readable (S3 AccessDenied)")


@dataclass(slots=True)
class _Entry:
    model: ServedModel
    size: int


class ModelCache:
    """Least-recently-used models, bounded by an estimate of the memory they hold.

    The estimate is the file's size times `MEMORY_PER_FILE_BYTE`: ONNX Runtime expands a graph
    when it builds a session (tree ensembles most: ten sessions of a 0.92 MB random forest hold
    31 MB once built, 3.4x), and building one needs the file's bytes and a copy of the graph on
    top. `make bench` cycling 50 such forests through the real handler peaked at 7.2 MB of RSS per
    cached model, hence 8; a loaded skops estimator holds at least its arrays.

    Refused models are remembered per (tenant, digest) for `refusal_ttl` seconds, the mapping
    TTL: the mapping cannot change sooner in this container, so refetching the same bytes would
    only repeat the refusal. `fetch` gives a tenant's S3 GetObject response
    (`fetch_model_object`).
    """

    MEMORY_PER_FILE_BYTE = 8

    def __init__(self, max_bytes: int, fetch: Callable[[Tenant], Any], refusal_ttl: float = 0) -> None:
        self.max_bytes = max_bytes
        self.total_bytes = 0
        self._fetch = fetch
        self._refusal_ttl = refusal_ttl
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._refused: dict[tuple[str, str], float] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._entries

    def get(self, tenant: Tenant) -> ServedModel:
        key = (tenant.tenant_id, tenant.model_sha256)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry.model  # hits = Predictions - ModelCacheMiss: no metric on the warm path
        if self._refused and self._refused_until(key) > time.monotonic():
            raise ModelUnavailable()
        try:
            return self._load(key, tenant)
        except ModelUnavailable:
            self._remember_refusal(key)
            raise

    def _refused_until(self, key: tuple[str, str]) -> float:
        return self._refused.get(key, 0.0)

    def _remember_refusal(self, key: tuple[str, str]) -> None:
        ttl = self._refusal_ttl
        if ttl <= 0:
            return
        now = time.monotonic()
        if len(self._refused) >= 4096:  # bounded like the mapping cache
            self._refused = {k: until for k, until in self._refused.items() if until > now}
            if len(self._refused) >= 4096:
                self._refused.clear()
        self._refused[key] = now + ttl

    def _load(self, key: tuple[str, str], tenant: Tenant) -> ServedModel:
        metrics.add_metric(name="ModelCacheMiss", unit=MetricUnit.Count, value=1)
        started = time.perf_counter()
        response = self._fetch(tenant)
        size = int(response["ContentLength"]) * self.MEMORY_PER_FILE_BYTE
        # Make room before reading: the fetched bytes and the parsed model then never sit on
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


def largest_cached_file(cache_bytes: int) -> int:
    """The largest model file a cache bounded by `cache_bytes` keeps: registration refuses
    larger ones, so a model that registers is never fetched and parsed on every request."""
    return cache_bytes // ModelCache.MEMORY_PER_FILE_BYTE


class _Invocation(threading.local):
    """The current invocation's tenant (Lambda's, in tenant isolation mode) and the clients its
    tenant's data is read with, per thread like the deadline (model_runtime/deadlines.py)."""

    tenant_id: str | None = None
    data: TenantData | None = None


class PredictRuntime(Runtime):
    """Predict's container state: the shared `Runtime`, this container's model cache, and the
    tenant isolation checks (docs/decisions/0017-tenant-isolation.md)."""

    def __init__(self, settings: Settings, *, session: boto3.session.Session | None = None) -> None:
        super().__init__(settings, session=session)
        self.per_tenant = settings.tenant_isolation == PER_TENANT
        self.vended_credentials = settings.tenant_data_credentials == AUTHORIZER
        self.environment_tenant: str | None = None  # per-tenant: the one tenant this environment serves
        self._invocation = _Invocation()

    @cached_property
    def models(self) -> ModelCache:
        settings = self.settings
        return ModelCache(
            settings.model_cache_bytes,
            lambda tenant: fetch_model_object(self.tenant_s3(), settings.model_bucket, tenant),
            refusal_ttl=settings.mapping_ttl_seconds,
        )

    @cached_property
    def tenant_clients(self) -> TenantDataClients:
        return TenantDataClients(self)

    def begin(self, tenant_id: str | None) -> None:
        """A new invocation, for the tenant Lambda names (`context.tenant_id`; None in shared mode)."""
        invocation = self._invocation
        invocation.tenant_id = tenant_id
        invocation.data = None

    def admit(self, tenant_id: str, authorizer: Mapping[str, Any]) -> None:
        """Before any mapping or model of `tenant_id` (the verified token's) is read: the invocation
        must run for that tenant (per-tenant: in an environment that only ever served it), and
        tenant data is read with the credentials the authorizer vended for it. Refused: 403."""
        invocation = self._invocation
        invoked_as = invocation.tenant_id
        if self.per_tenant:
            if invoked_as != tenant_id or self.environment_tenant not in (None, tenant_id):
                _refuse_invocation("tenant_environment_mismatch", "invocation is not for the token's tenant")
            self.environment_tenant = tenant_id
        elif invoked_as is not None and invoked_as != tenant_id:
            _refuse_invocation("tenant_environment_mismatch", "invocation is not for the token's tenant")
        if self.vended_credentials:
            vouched = authorizer.get("tenant_id") == tenant_id
            try:
                data = self.tenant_clients.for_context(authorizer, tenant_id) if vouched else None
            except ForeignSession:
                _refuse_invocation("tenant_credentials_foreign", "credentials vended for another tenant")
            if data is None:
                _refuse_invocation(
                    "tenant_credentials_missing", "no credentials vended for the token's tenant"
                )
            invocation.data = data

    def tenant_table(self) -> Table:
        data = self._invocation.data
        return self.table if data is None else data.table

    def tenant_s3(self) -> S3Client:
        data = self._invocation.data
        return self.s3 if data is None else data.s3


def _refuse_invocation(event: str, message: str) -> NoReturn:
    logger.warning(message, extra={"security_event": event})
    metrics.add_metric(name="TenantIsolationRefused", unit=MetricUnit.Count, value=1)
    raise Forbidden()
