"""Credentials that reach one tenant's data, vended by the authorizer and used by predict.

Predict parses tenant-supplied graphs (ONNX Runtime), so its own role reads no tenant data: a
memory-safety bug reached by one tenant's graph must not give it every tenant's models and
mappings. The authorizer, which verified the token and resolved its tenant, assumes the
TenantDataRole (template.yaml) with the session tag `tenant_id` = that tenant; the role's policy
names `models/${aws:PrincipalTag/tenant_id}/*` and the one mapping item
`tenant#${aws:PrincipalTag/tenant_id}`, so the session reaches that tenant's data alone
(docs/decisions/0017-tenant-isolation.md). The credentials travel to predict in the authorizer's
context (`requestContext.authorizer`), which only API Gateway writes.

Lifetime: API Gateway caches the authorizer's answer (and so the credentials) for up to
`MAPPING_TTL_SECONDS`, and predict may then run for its timeout: credentials are only ever handed
out while they stay valid that long plus `CLOCK_MARGIN_SECONDS` (`CredentialVendor`).

Secrets never reach a log or an error: `TenantCredentials` hides them from `repr`, the vendor logs
only what `describe_failure` says of a failed call (operation and error code), and predict never
logs the event.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from model_runtime.deadlines import CLIENT_CONFIG
from model_runtime.table import Table
from model_runtime.ttl_cache import TtlCache

if TYPE_CHECKING:
    import botocore.session
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

    from model_runtime.deadlines import Deadline
    from model_runtime.settings import Settings


class Container(Protocol):
    """What the vendor and the clients need of a container's state (`runtime.Runtime`, which
    imports this module: a protocol, not an import)."""

    settings: Settings
    deadline: Deadline

    @property
    def sts(self) -> STSClient: ...

    @property
    def botocore_session(self) -> botocore.session.Session: ...


# The authorizer context's keys (API Gateway passes string values through unchanged).
ACCESS_KEY_ID: Final = "tenant_access_key_id"
SECRET_ACCESS_KEY: Final = "tenant_secret_access_key"  # noqa: S105 - a key name, not a secret
SESSION_TOKEN: Final = "tenant_session_token"  # noqa: S105 - a key name, not a secret
TENANT_TAG: Final = "tenant_id"
# STS's shortest session (AssumeRole DurationSeconds minimum): the least exposure a leak can buy.
MIN_SESSION_SECONDS: Final = 900
# Between the authorizer's clock and the end of a session as AWS sees it.
CLOCK_MARGIN_SECONDS: Final = 30


@dataclass(frozen=True, slots=True)
class TenantCredentials:
    """A tenant-data session's credentials; the secret halves never appear in a repr."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)

    def to_context(self) -> dict[str, str]:
        return {
            ACCESS_KEY_ID: self.access_key_id,
            SECRET_ACCESS_KEY: self.secret_access_key,
            SESSION_TOKEN: self.session_token,
        }

    @classmethod
    def from_context(cls, authorizer: Mapping[str, Any]) -> TenantCredentials | None:
        """The credentials in an authorizer context, or None when it holds none (or a part)."""
        values = (
            authorizer.get(ACCESS_KEY_ID),
            authorizer.get(SECRET_ACCESS_KEY),
            authorizer.get(SESSION_TOKEN),
        )
        if not all(isinstance(value, str) and value for value in values):
            return None
        return cls(*values)  # type: ignore[arg-type] # all three are non-empty strings


# How long a session may be handed out, at least, before it has too little left.
HANDOUT_SECONDS: Final = 600


def session_name(tenant_id: str) -> str:
    """A tenant's sessions' name: CloudTrail shows it, and predict checks it (`TenantDataClients`).
    Session names allow [\\w+=,.@-], 2..64 characters; tenant ids are 1-64 of [a-z0-9-], so two
    tenant ids that share their first 57 characters share a name (the session tag still differs)."""
    return f"tenant-{tenant_id}"[:64]


class ForeignSession(Exception):
    """A session that STS says was not vended for the tenant it came with."""


def session_seconds(needed_validity: float) -> int:
    """How long a session is asked for: the validity it must keep when handed out, plus the time
    during which it may be handed out; never under STS's minimum. The template's defaults
    (authorizer TTL 60 s, predict 10 s): 900 s, handed out for 800 s."""
    return max(MIN_SESSION_SECONDS, int(needed_validity + HANDOUT_SECONDS))


class CredentialVendor:
    """The authorizer's credentials per tenant: one AssumeRole per tenant and window.

    A session of `session_seconds(needed)` may be handed out during its first `window` =
    duration - needed seconds (so it still has `needed` left when handed out). It is refreshed
    after `window - grace`; if STS then fails (a dependency failure), the last session is handed
    out during the `grace` left, never past the window, and with none the authorizer answers 503
    (model_runtime/ttl_cache.py). `needed` = the authorizer cache TTL + predict's timeout +
    `CLOCK_MARGIN_SECONDS`.
    """

    def __init__(self, runtime: Container, role_arn: str, needed_validity: float) -> None:
        self._runtime = runtime
        self._role_arn = role_arn
        self.duration = session_seconds(needed_validity)
        window = self.duration - needed_validity
        grace = min(float(runtime.settings.stale_grace_seconds), window / 2)
        self._sessions: TtlCache[TenantCredentials] = TtlCache(
            self._assume,
            window - grace,
            grace=grace,
            name="tenant-credentials",
            fallback_scope=runtime.deadline.single_attempt,
        )

    def for_tenant(self, tenant_id: str) -> TenantCredentials:
        return self._sessions.get(tenant_id)

    def _assume(self, tenant_id: str) -> TenantCredentials:
        answer = self._runtime.sts.assume_role(
            RoleArn=self._role_arn,
            # CloudTrail names the tenant; session names allow [\w+=,.@-], 2..64 characters.
            RoleSessionName=session_name(tenant_id),
            DurationSeconds=self.duration,
            Tags=[{"Key": TENANT_TAG, "Value": tenant_id}],
        )
        credentials = answer["Credentials"]
        return TenantCredentials(
            credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
        )


@dataclass(slots=True)
class TenantData:
    """Predict's clients for one tenant's data, made with that tenant's credentials."""

    s3: S3Client
    table: Table
    tenant_id: str
    session_token: str = field(repr=False)


class TenantDataClients:
    """Clients per access key id, the last `max_entries` kept: a warm request with credentials
    seen before creates no client and makes no call. A new session costs its clients (6 ms for
    S3 and DynamoDB, measured 2026-12-07) and one STS GetCallerIdentity, which names the session
    (`session_name`): one vended for another tenant than the token's is refused
    (`ForeignSession`), before any of its clients is used. In per-tenant mode an environment sees
    one tenant, so one or two sessions (a refresh) at a time."""

    def __init__(self, runtime: Container, max_entries: int = 8) -> None:
        self._runtime = runtime
        self._max_entries = max_entries
        self._clients: OrderedDict[str, TenantData] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def for_context(self, authorizer: Mapping[str, Any], tenant_id: str) -> TenantData | None:
        """The clients for `tenant_id`'s session in an authorizer context; None when it holds none.

        The warm path: a session seen before is found by its key id and token, without building
        anything (about 0.3 us; building `TenantCredentials` first cost 1 us more)."""
        found = self._clients.get(authorizer.get(ACCESS_KEY_ID))  # type: ignore[arg-type]
        if found is not None and found.session_token == authorizer.get(SESSION_TOKEN):
            if found.tenant_id != tenant_id:
                raise ForeignSession()
            return found
        credentials = TenantCredentials.from_context(authorizer)
        return None if credentials is None else self.get(credentials, tenant_id)

    def get(self, credentials: TenantCredentials, tenant_id: str) -> TenantData:
        found = self._clients.get(credentials.access_key_id)
        if found is not None and found.session_token == credentials.session_token:
            if found.tenant_id != tenant_id:
                raise ForeignSession()
            return found
        runtime = self._runtime
        botocore_session = runtime.botocore_session

        def client(service: str) -> Any:
            made = botocore_session.create_client(
                service,
                config=CLIENT_CONFIG,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token,
            )
            return runtime.deadline.install(made)

        # Which tenant STS says the session is for (always allowed; no policy needed)
        arn = client("sts").get_caller_identity()["Arn"]
        if arn.rpartition("/")[2] != session_name(tenant_id):
            raise ForeignSession()
        data = TenantData(
            client("s3"),
            Table(client("dynamodb"), runtime.settings.table_name),
            tenant_id,
            credentials.session_token,
        )
        self._clients[credentials.access_key_id] = data
        while len(self._clients) > self._max_entries:
            self._clients.popitem(last=False)
        return data
