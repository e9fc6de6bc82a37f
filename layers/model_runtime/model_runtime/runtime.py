"""One container's state: its settings, its AWS clients and every cache, in one object.

Each function builds one `Runtime` when Lambda imports it (init) and passes it to the library
calls; nothing in `model_runtime` keeps state of its own. Clients are created on first use, so a
test builds a fresh `Runtime` once moto is running and gets a fresh container: no setting, client,
mapping, key or verified token carried over. `inferctl` builds one from its target.

Endpoints come from boto3's own configuration (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, ...),
so the same code talks to AWS, to moto's server or to moto in-process.

Reads on the request path are cached for `MAPPING_TTL_SECONDS`, so an operator's change
(disable, new model version, key rotation) takes effect within that time; while DynamoDB fails,
a value read before stays usable `STALE_GRACE_SECONDS` longer (`model_runtime.ttl_cache`). Every
client keeps to the request's deadline (`model_runtime.deadlines`): each handler calls
`runtime.deadline.begin(context, event)` first.
"""

from __future__ import annotations

import gc
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, Self

import botocore.session
from botocore.config import Config

from model_runtime.aws_data import fast_session
from model_runtime.deadlines import CLIENT_CONFIG, Deadline
from model_runtime.settings import Settings, read_settings
from model_runtime.table import ActivityLog, KeyRing, Table, Tenant
from model_runtime.tenant_credentials import CLOCK_MARGIN_SECONDS, CredentialVendor
from model_runtime.tokens import Tokens
from model_runtime.ttl_cache import TtlCache

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient


def end_init() -> None:
    """Called last by each function's module, which disabled the garbage collector first.

    Init's imports (numpy, ONNX Runtime, botocore, Powertools) allocate some 10^5 objects, each
    new batch of which set off collections over all the objects before it; and everything init
    built lives as long as the execution environment. So the collector is off during init, and
    what init built then moves out of its sight (`gc.freeze`) before it is turned back on: the
    first request's allocations (botocore's service models) no longer set off full collections
    either. Measured 2026-12-06 in the cold-start bench's setting: predict's import 180-240 ms
    with collections, 80-110 ms without; its first request 200-240 ms, then 70-100 ms."""
    gc.freeze()
    gc.enable()


def new_client(session: botocore.session.Session, service: str, config: Config | None = None) -> Any:
    """Every AWS client of the functions and the CLI is made here, with `CLIENT_CONFIG` (and
    `config` on top of it)."""
    return session.create_client(
        service, config=CLIENT_CONFIG if config is None else CLIENT_CONFIG.merge(config)
    )


class Runtime:
    """Settings, lazily created clients, the table, and the tenant, key-ring and token caches."""

    def __init__(self, settings: Settings, *, session: boto3.session.Session | None = None) -> None:
        self.settings = settings
        self._session = session
        self.deadline = Deadline()
        ttl, grace = settings.mapping_ttl_seconds, settings.stale_grace_seconds
        # Lambdas, not bound methods: the table (and its client) is created on first use.
        self.tenants: TtlCache[Tenant | None] = TtlCache(
            lambda tenant_id: self.tenant_table().get_tenant(tenant_id),
            ttl,
            grace=grace,
            name="tenant",
            fallback_scope=self.deadline.single_attempt,
        )
        self.keyrings: TtlCache[KeyRing] = TtlCache(
            lambda _: self.table.get_keyring(settings.signing_key_id),
            ttl,
            max_entries=1,
            grace=grace,
            name="keyring",
            fallback_scope=self.deadline.single_attempt,
        )

    @classmethod
    def from_environment(cls) -> Self:
        return cls(read_settings())

    @cached_property
    def session(self) -> boto3.session.Session:
        """boto3's session, for the operator CLI's own calls; the clients below need only botocore."""
        import boto3  # noqa: PLC0415 - see `botocore_session`

        return self._session or boto3.session.Session()

    @cached_property
    def botocore_session(self) -> botocore.session.Session:
        # botocore's own session, not boto3's: the functions need plain clients, and `import boto3`
        # also imports s3transfer and the resource layer, which no request uses (about 0.07 s of CPU
        # per cold start here, 2026-12-06). One session for every client: each new session loads
        # botocore's data files again. A boto3 session given by the caller (the CLI's profile and
        # region) is used through the botocore session it wraps.
        # Its data files are parsed with orjson (model_runtime/aws_data.py): ~35 ms less per cold start.
        return self._session._session if self._session else fast_session()

    def client(self, service: str) -> Any:
        """A new client for `service` that keeps to the request's deadline (the request path's
        clients are the cached ones below)."""
        return self.deadline.install(new_client(self.botocore_session, service))

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self.client("dynamodb")  # type: ignore[no-any-return]

    @cached_property
    def s3(self) -> S3Client:
        return self.client("s3")  # type: ignore[no-any-return]

    @cached_property
    def kms(self) -> KMSClient:
        return self.client("kms")  # type: ignore[no-any-return]

    @cached_property
    def sts(self) -> STSClient:
        return self.client("sts")  # type: ignore[no-any-return]

    @cached_property
    def table(self) -> Table:
        return Table(self.dynamodb, self.settings.table_name)

    @cached_property
    def tenant_credentials(self) -> CredentialVendor:
        """The authorizer's sessions of the tenant-data role, one per tenant. API Gateway reuses
        an answer (and its credentials) for the authorizer cache TTL, then predict runs."""
        settings = self.settings
        needed = settings.mapping_ttl_seconds + settings.predict_timeout_seconds + CLOCK_MARGIN_SECONDS
        return CredentialVendor(self, settings.tenant_data_role_arn, needed)

    def tenant_table(self) -> Table:
        """The table as the current request may read its tenant's mapping: predict reads it with
        the credentials vended for that tenant (`model_serving.models.PredictRuntime`)."""
        return self.table

    @cached_property
    def activity(self) -> ActivityLog:
        """The ActivityTable: the audit trail of admin actions (`model_runtime.audit`)."""
        return ActivityLog(self.dynamodb, self.settings.activity_table_name)

    @cached_property
    def tokens(self) -> Tokens:
        return Tokens(self.settings, lambda: self.kms, partial(self.keyrings.get, ""))

    def keyring(self) -> KeyRing:
        """The (cached) key ring."""
        return self.keyrings.get("")
