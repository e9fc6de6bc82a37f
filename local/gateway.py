"""Serve a SAM template's API routes locally, in-process, without Docker.

`sam local start-api` runs every function in a Docker container. Where there is no Docker engine,
this module still serves the template's routes through SAM CLI's *own* local API Gateway
(`samcli.local.apigw.local_apigw_service.LocalApigwService`): routes are discovered by SAM's own
providers, and the request -> Lambda event -> response translation is SAM's. Only the function
runner is ours: `InProcessRunner` imports the handler and calls it in this process, in place of
SAM's Docker-backed `LocalLambdaRunner`. So routing and event shape (API Gateway REST, payload
v1) are the same as `sam local start-api`. Where SAM's gateway answers differently from API
Gateway, `GatewayAnswers` makes it answer as API Gateway does: the template's GatewayResponses
for every answer the gateway makes itself, HEAD not derived from GET, a body that is not UTF-8
passed on as text (aws/aws-sam-cli#7927), API Gateway's 10 MB payload quota.

Not emulated: per-function environment variables (the caller sets `os.environ`), layers (their
packages come from the installed project, `make venv`), memory limits, and stopping a handler at its
timeout (an overrunning handler runs to completion; its result is then discarded, so the client
gets the gateway's answer to a timed-out function: the template's DEFAULT_5XX).

samcli internals relied on (they are not a public API; re-check them when aws-sam-cli changes):
- `SamLocalStackProvider.get_stacks`, `ApiProvider(stacks, cwd=...).api` (an `Api` with `.routes`,
  each `Route.function_name` being the function's logical id), `SamFunctionProvider`.
- `LocalApigwService(api=, lambda_runner=, port=, host=, stderr=)`, `.create()` building the Flask
  app in the private attribute `._app` and the routes in `._dict_of_routes` (keyed
  "<endpoint>:<METHOD>"), `.port` being read per request (X-Forwarded-Port), its answers'
  bodies (`ServiceErrorResponses`), and its event builder reading the body with
  `request.get_data()` (werkzeug's cached `_cached_data`).
- The runner contract used by `LocalApigwService._invoke_lambda_function`: `is_debugging()` and
  `invoke(name, event_json_str, stdout=StreamWriter(StringIO), stderr=..., tenant_id=...)`. The
  Lambda result must be written as *text* with `stdout.write_str` (`write_bytes` on that writer
  is silently dropped). Raising `FunctionNotFound` gives 502, `TenantIdValidationError` gives 400.
- `LambdaOutputParser.is_lambda_error_response`: `{"errorMessage","errorType"}` alone is a "user
  error" (500); the Python runtime's error shape (with `requestId` and `stackTrace`) is not, and
  fails response validation instead, which SAM answers with 502.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self

from flask import Response as FlaskResponse
from flask import g, has_request_context, request
from samcli.commands.local.lib.exceptions import TenantIdValidationError
from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.provider import Function, Stack
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.local.apigw.local_apigw_service import LocalApigwService
from samcli.local.apigw.route import Route
from samcli.local.lambdafn.exceptions import FunctionNotFound
from samcli.yamlhelper import yaml_parse
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from local.log_subscriptions import LogSubscriptions, invoker, subscriptions_from_template

__all__ = [
    "FunctionConfig",
    "Gateway",
    "GatewayAnswers",
    "GatewayResponse",
    "Handler",
    "InProcessRunner",
    "LambdaContext",
    "LazyHandler",
    "PerTenantHandler",
    "build_gateway",
    "gateway_responses_from_template",
    "handlers_from_template",
]

LOG = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], "LambdaContext"], Any]

_ACCOUNT_ID = "123456789012"
_REGION = "us-east-1"


@dataclass(frozen=True)
class FunctionConfig:
    """What the fake Lambda context needs to know about a function (from the template)."""

    function_name: str
    memory_mb: int = 128
    timeout_s: float = 3.0
    # TenancyConfig set: SAM then requires an X-Amz-Tenant-Id header (and refuses it otherwise)
    multi_tenant: bool = False


@dataclass
class LambdaContext:
    """The subset of the Python runtime's LambdaContext that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    tenant_id: str | None = None
    deadline_ms: int = 0

    def get_remaining_time_in_millis(self) -> int:
        return max(self.deadline_ms - int(time.time() * 1000), 0)

    @classmethod
    def for_function(cls, config: FunctionConfig, tenant_id: str | None = None) -> LambdaContext:
        name = config.function_name
        return cls(
            function_name=name,
            memory_limit_in_mb=config.memory_mb,
            invoked_function_arn=f"arn:aws:lambda:{_REGION}:{_ACCOUNT_ID}:function:{name}",
            log_group_name=f"/aws/lambda/{name}",
            tenant_id=tenant_id,
            deadline_ms=int((time.time() + config.timeout_s) * 1000),
        )


def _write_log(stderr: Any, text: str) -> None:
    """Write runtime log text to samcli's StreamWriter if given, else to the current sys.stderr."""
    if stderr is not None and hasattr(stderr, "write_str"):
        stderr.write_str(text)
        stderr.flush()
    else:
        sys.stderr.write(text)
        sys.stderr.flush()


def _runtime_error(request_id: str, error_type: str, message: str, stack: list[str]) -> str:
    """The body the Python Lambda runtime (awslambdaric) returns for a failed invocation."""
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": request_id,
            "stackTrace": stack,
        }
    )


class InProcessRunner:
    """A stand-in for samcli's LocalLambdaRunner that calls Python handlers in this process.

    `handlers` is keyed by function logical id (what SAM's routes carry). With `serialize` (the
    default, for handlers not written to be thread-safe) one function runs one invocation at a
    time, as one Lambda execution environment does. `build_gateway` runs this project's handlers
    concurrently instead, each request in its own thread, as Lambda would run concurrent requests
    in separate environments: behind one lock a request would wait for another's stalled AWS
    call, which on AWS it never does (docs/fault-drill.md).
    """

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        configs: Mapping[str, FunctionConfig] | None = None,
        *,
        enforce_timeout: bool = True,
        serialize: bool = True,
    ) -> None:
        self._handlers = dict(handlers)
        self._configs = dict(configs or {})
        self._enforce_timeout = enforce_timeout
        self._locks = {name: threading.Lock() for name in self._handlers} if serialize else {}
        # The template's log subscriptions (local/log_subscriptions.py), set by `build_gateway`.
        self.subscriptions: LogSubscriptions | None = None

    def is_debugging(self) -> bool:
        # False makes samcli's service multi-threaded (it would be single-threaded for a debugger).
        return False

    def invoke(
        self,
        function_identifier: str,
        event: str | bytes | Mapping[str, Any],
        stdout: Any = None,
        stderr: Any = None,
        tenant_id: str | None = None,
        **_: Any,
    ) -> None:
        """Run the handler and write its JSON result (or the runtime's error JSON) to `stdout`.

        `event` arrives from samcli as a JSON string; `stdout` is a samcli StreamWriter over a
        StringIO. Handler failures never raise from here: they are logged to `stderr` and
        reported the way the Lambda runtime reports them, which SAM's gateway turns into a 502.
        """
        handler = self._handlers.get(function_identifier)
        if handler is None:
            raise FunctionNotFound(f"Unable to find a Function with name '{function_identifier}'")
        config = self._configs.get(function_identifier, FunctionConfig(function_identifier))
        payload = json.loads(event) if isinstance(event, (str, bytes)) else dict(event)
        # SAM passes the client's own X-Amz-Tenant-Id header here; API Gateway never makes a client
        # header an invocation header: the template maps the invocation's tenant id from the
        # authorizer's context alone (`TENANT_ID_SOURCE`), and only for a tenant-isolated function.
        tenant_id = invocation_tenant_id(payload) if config.multi_tenant else None
        # Same checks as LocalLambdaRunner.get_function (SAM answers 400 either way).
        if config.multi_tenant and not tenant_id:
            raise TenantIdValidationError(
                "The invoked function is enabled with tenancy configuration. "
                "Add a valid tenant ID in your request and try again."
            )
        if tenant_id and not config.multi_tenant:
            raise TenantIdValidationError(
                "The invoked function is not enabled with tenancy configuration. "
                "Remove the tenant ID from your request and try again."
            )

        if isinstance(handler, PerTenantHandler):
            assert tenant_id is not None  # checked above: a tenant-isolated function needs one
            handler = handler.for_tenant(tenant_id)
        _stamp_receipt(payload)
        context = LambdaContext.for_function(config, tenant_id)
        lock = self._locks.get(function_identifier)
        with self.subscriptions.captured(function_identifier) if self.subscriptions else nullcontext():
            if lock is not None:
                with lock:
                    output = self._call(handler, payload, context, config, stderr)
            else:
                output = self._call(handler, payload, context, config, stderr)
        if output is not None and stdout is not None:
            stdout.write_str(output)
            stdout.flush()

    def _call(
        self,
        handler: Handler,
        event: dict[str, Any],
        context: LambdaContext,
        config: FunctionConfig,
        stderr: Any,
    ) -> str | None:
        request_id = context.aws_request_id
        _note_invocation(event)
        started = time.monotonic()
        try:
            result = handler(event, context)
        except Exception as exc:
            if str(exc) == UNAUTHORIZED and _is_authorizer_event(event):
                # A Lambda authorizer's refusal, not a failure: API Gateway answers it with 401.
                _mark_authorizer_unauthorized()
                return _runtime_error(request_id, type(exc).__name__, str(exc), [])
            _write_log(
                stderr,
                f"[ERROR] {request_id} {type(exc).__name__}: {exc}\n{traceback.format_exc()}",
            )
            # stackTrace left empty: samcli logs this whole body, the traceback is logged above
            return _runtime_error(request_id, type(exc).__name__, str(exc), [])
        if self._enforce_timeout and time.monotonic() - started > config.timeout_s:
            # Lambda would have killed the function; SAM then gets no output and answers 502.
            _write_log(
                stderr,
                f"{request_id} Task timed out after {config.timeout_s:.2f} seconds\n",
            )
            return None
        try:
            return json.dumps(result)
        except (TypeError, ValueError) as exc:
            _write_log(stderr, f"[ERROR] {request_id} Runtime.MarshalError: {exc}\n")
            return _runtime_error(
                request_id,
                "Runtime.MarshalError",
                f"Unable to marshal response: {exc}",
                [],
            )


@dataclass
class LazyHandler:
    """`attr` of the handler file `path`, loaded on first call as module `module` (a name unique
    to its CodeUri), without putting anything on sys.path."""

    module: str
    attr: str
    path: str

    def load(self) -> Handler:
        loaded = sys.modules.get(self.module)
        if loaded is None or getattr(loaded, "__file__", None) != self.path:
            spec = importlib.util.spec_from_file_location(self.module, self.path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {self.module} from {self.path}")
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[self.module] = loaded  # before running it, as `import` does
            try:
                spec.loader.exec_module(loaded)
            except BaseException:
                del sys.modules[self.module]
                raise
        handler: Handler = getattr(loaded, self.attr)
        return handler

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> Any:
        return self.load()(event, context)


# Where the template maps a tenant-isolated invocation's tenant id from (predict's integration
# request, `integration.request.header.X-Amz-Tenant-Id`): the authorizer's verified tenant.
TENANT_ID_SOURCE = "context.authorizer.tenant_id"


def invocation_tenant_id(event: Mapping[str, Any]) -> str | None:
    """The tenant id API Gateway gives the invocation: `TENANT_ID_SOURCE`, read from the event."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    value = authorizer.get(TENANT_ID_SOURCE.rpartition(".")[2]) if isinstance(authorizer, Mapping) else None
    return value if isinstance(value, str) and value else None


class PerTenantHandler:
    """A tenant-isolated function: one execution environment per tenant id, never shared, as Lambda
    runs a function with `TenancyConfig: PER_TENANT`. A tenant's first invocation imports the
    handler's module afresh under a name of its own (`<module>[<tenant id>]`), so its module state
    (predict's `runtime`: settings, clients, mapping and model caches) is that tenant's alone;
    `environment` is set while it is imported (Powertools reads its settings then)."""

    def __init__(self, handler: LazyHandler, environment: Mapping[str, str] | None = None) -> None:
        self.handler = handler
        self.environment = dict(environment or {})
        self.environments: dict[str, Handler] = {}  # by tenant id
        self._lock = threading.Lock()

    def for_tenant(self, tenant_id: str) -> Handler:
        with self._lock:
            found = self.environments.get(tenant_id)
            if found is None:
                module = f"{self.handler.module}[{tenant_id}]"
                found = LazyHandler(module, self.handler.attr, self.handler.path)
                previous = {name: os.environ.get(name) for name in self.environment}
                os.environ.update(self.environment)
                try:
                    found.load()
                finally:
                    for name, value in previous.items():
                        if value is None:
                            os.environ.pop(name, None)
                        else:
                            os.environ[name] = value
                self.environments[tenant_id] = found
            return found

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> Any:
        return self.for_tenant(str(context.tenant_id))(event, context)


def _stacks(template_path: str, parameter_overrides: Mapping[str, str] | None = None) -> list[Stack]:
    # samtranslator's validator emits dozens of DeprecationWarnings per template load
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        stacks: list[Stack] = SamLocalStackProvider.get_stacks(
            str(Path(template_path).resolve()),
            parameter_overrides=dict(parameter_overrides or {}),
        )[0]  # (stacks, remote stack paths)
        for stack in stacks:
            stack.resources  # noqa: B018 - runs (and caches) SAM's plugins while warnings are muted
    return stacks


def _functions(stacks: list[Stack]) -> list[Function]:
    # use_raw_codeuri: keep CodeUri as written in the template (relative to the template's dir).
    provider = SamFunctionProvider(stacks, use_raw_codeuri=True, ignore_code_extraction_warnings=True)
    functions: list[Function] = list(provider.get_all())
    return functions


def _module_for(function: Function, root: Path) -> tuple[str, str, Path]:
    """CodeUri `functions/login/` + Handler `app.lambda_handler`
    -> (`functions.login.app`, `lambda_handler`, `<root>/functions/login/app.py`)."""
    if not function.handler or not isinstance(function.codeuri, str):
        raise ValueError(f"{function.name}: needs a Handler and a local CodeUri to run in-process")
    code_dir = (root / function.codeuri).resolve()
    try:
        parts = code_dir.relative_to(root.resolve()).parts
    except ValueError:
        raise ValueError(f"{function.name}: CodeUri {function.codeuri!r} is outside {root}") from None
    module, _, attr = function.handler.rpartition(".")
    if not module or not attr:
        raise ValueError(f"{function.name}: Handler {function.handler!r} is not 'module.function'")
    return ".".join([*parts, module]), attr, code_dir.joinpath(*module.split(".")).with_suffix(".py")


def handlers_from_template(template_path: str) -> dict[str, LazyHandler]:
    """A lazily loaded handler per AWS::Serverless::Function, keyed by logical id.

    Each handler file is loaded by its path under a module name made of its CodeUri (so
    `functions/login/app.py` is `functions.login.app`, and two functions' `app.py` do not collide).
    Unlike in Lambda, the CodeUri directory is not on sys.path: handlers must not import siblings
    by bare name.
    """
    return _lazy_handlers(_functions(_stacks(template_path)), template_path)


def _lazy_handlers(functions: list[Function], template_path: str) -> dict[str, LazyHandler]:
    root = Path(template_path).resolve().parent
    handlers = {}
    for function in functions:
        module, attr, path = _module_for(function, root)
        handlers[function.name] = LazyHandler(module, attr, str(path))
    return handlers


def _configs(functions: list[Function], stacks: list[Stack] | None = None) -> dict[str, FunctionConfig]:
    return {
        f.name: FunctionConfig(
            function_name=f.functionname or f.name,
            memory_mb=int(f.memory or 128),
            timeout_s=float(f.timeout or 3),
            multi_tenant=_tenant_isolated(f.tenancy_config, stacks or []),
        )
        for f in functions
    }


def _tenant_isolated(tenancy: Any, stacks: list[Stack]) -> bool:
    """Whether a function's TenancyConfig, as CloudFormation resolves it, is PER_TENANT. SAM's
    providers leave a `!If` in it unresolved; its condition is resolved here, as long as it is a
    `!Equals` of a parameter and a literal (the template's `PerTenant`)."""
    if isinstance(tenancy, Mapping) and set(tenancy) == {"Fn::If"}:
        condition, when_true, when_false = tenancy["Fn::If"]
        tenancy = when_true if _condition(condition, stacks) else when_false
    return isinstance(tenancy, Mapping) and tenancy.get("TenantIsolationMode") == "PER_TENANT"


def _operand(operand: Any, stack: Stack, condition: str) -> Any:
    """A literal, or a parameter's value (the override given, else its Default)."""
    parameters = stack.template_dict.get("Parameters") or {}
    if isinstance(operand, Mapping) and set(operand) == {"Ref"} and operand["Ref"] in parameters:
        return (stack.parameters or {}).get(operand["Ref"], parameters[operand["Ref"]].get("Default"))
    if isinstance(operand, Mapping):
        raise ValueError(f"condition {condition}: cannot resolve {dict(operand)!r} locally")
    return operand


def _condition(name: str, stacks: list[Stack]) -> bool:
    for stack in stacks:
        spec = (stack.template_dict.get("Conditions") or {}).get(name)
        if spec is not None:
            left, right = spec["Fn::Equals"]
            return bool(_operand(left, stack, name) == _operand(right, stack, name))
    raise ValueError(f"no condition {name} in the template")


# --- API Gateway's own answers, from the template's GatewayResponses ----------------------------
#
# On AWS, every answer API Gateway makes itself (an authorizer's refusal or failure, an unknown
# route or method, an oversized request, a function that failed) is one of its gateway responses,
# customised by the template's GatewayResponses: here problem+json with the six security headers.
# SAM's local gateway applies none of them: it answers with its own `{"message": ...}` bodies (a
# missing identity source a bare 401, a Deny a bare 403, an unknown route a 403 "Missing
# Authentication Token", a failed function or authorizer a 502) and no headers. `GatewayAnswers`
# turns each of those into the template's response of the type API Gateway would use, read from
# template.yaml at start (never copied). Answers the functions produce are never touched.
#
# Which type, as API Gateway picks it (docs: "Gateway response types for API Gateway"; a type
# the template does not define falls back to DEFAULT_4XX / DEFAULT_5XX, as on AWS):
# - the authorizer raised "Unauthorized", or the identity source is missing: UNAUTHORIZED;
# - the authorizer denied: ACCESS_DENIED;
# - the authorizer failed (raised anything else, timed out, answered no policy): API Gateway
#   calls that an authorizer configuration error (500 AuthorizerConfigurationException):
#   AUTHORIZER_CONFIGURATION_ERROR, or AUTHORIZER_FAILURE where the template customises only that;
# - no such route or method (HEAD included: API Gateway does not derive HEAD from GET):
#   MISSING_AUTHENTICATION_TOKEN;
# - a request over API Gateway's 10 MB payload quota: REQUEST_TOO_LARGE;
# - the function failed, timed out or answered something that is not a proxy response: DEFAULT_5XX.

UNAUTHORIZED = "Unauthorized"
_SAM_MISSING_IDENTITY = (401, {"message": "Unauthorized"})
_SAM_DENIED = (403, {"message": "User is not authorized to access this resource"})
_SAM_NO_ROUTE = (403, {"message": "Missing Authentication Token"})
# API Gateway's quota on a REST API's request payload (API Gateway quotas, "Payload size": 10 MB).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
_AUTHORIZER_FAILURE_TYPES = ("AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE")


def _is_authorizer_event(event: Mapping[str, Any]) -> bool:
    return event.get("type") == "REQUEST" and "methodArn" in event


def _note_invocation(event: Mapping[str, Any]) -> None:
    """Remember, for this HTTP request, whether the authorizer ran and whether the route's function
    did: a SAM 5xx after the authorizer and before the function is the authorizer failing."""
    if has_request_context():
        if _is_authorizer_event(event):
            g.authorizer_ran = True
        else:
            g.function_ran = True


def _stamp_receipt(event: dict[str, Any]) -> None:
    """`requestContext.requestTimeEpoch` as API Gateway sets it: when it received the request, in
    epoch milliseconds. SAM's is one fixed time (a default argument evaluated when samcli is
    imported), and the functions' deadlines count from it (model_runtime/deadlines.py)."""
    context = event.get("requestContext")
    received_ms = g.get("received_ms") if has_request_context() else None
    if isinstance(context, dict) and received_ms is not None:
        context["requestTimeEpoch"] = received_ms


def _mark_authorizer_unauthorized() -> None:
    if has_request_context():
        g.authorizer_unauthorized = True


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: str


def _literal(value: str) -> str:
    """A gateway response header value is a quoted literal: 'text', with \\' for a quote."""
    return value[1:-1].replace("\\'", "'") if len(value) >= 2 and value[0] == value[-1] == "'" else value


def gateway_responses_from_template(template_path: str) -> dict[str, GatewayResponse]:
    """The GatewayResponses of the template's AWS::Serverless::Api resources, by response type."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        document = yaml_parse(Path(template_path).read_text())
    found: dict[str, GatewayResponse] = {}
    for resource in (document.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        for kind, spec in ((resource.get("Properties") or {}).get("GatewayResponses") or {}).items():
            headers = (spec.get("ResponseParameters") or {}).get("Headers") or {}
            found[kind] = GatewayResponse(
                status=int(spec.get("StatusCode", 500)),
                headers={name: _literal(str(value)) for name, value in headers.items()},
                body=str((spec.get("ResponseTemplates") or {}).get("application/json", "")),
            )
    return found


class GatewayAnswers:
    """The template's gateway responses, applied to the answers SAM's local gateway makes itself."""

    def __init__(self, responses: Mapping[str, GatewayResponse], service: LocalApigwService) -> None:
        self.responses = dict(responses)
        self.binary_media_types: list[str] = list(service.api.binary_media_types or [])
        # SAM's routes by "<flask endpoint>:<METHOD>", filled by service.create() (private)
        self._routes: Mapping[str, Route] = service._dict_of_routes
        self._endpoints = {key.rpartition(":")[0] for key in self._routes}
        # The headers every gateway response carries alike (the six security headers): what the
        # gateway's answers that are not errors (HEAD's, /openapi.json) get too.
        shared = [set(r.headers.items()) for r in self.responses.values()]
        self.common_headers = dict(sorted(set.intersection(*shared))) if shared else {}
        self.common_headers.pop("Content-Type", None)

    def response(self, *kinds: str, status_class: int) -> GatewayResponse | None:
        """The first of `kinds` the template defines, else its DEFAULT_4XX or DEFAULT_5XX."""
        for kind in (*kinds, f"DEFAULT_{status_class}XX"):
            if kind in self.responses:
                return self.responses[kind]
        return None

    def flask_response(self, kind: str, *, status_class: int) -> FlaskResponse | None:
        found = self.response(kind, status_class=status_class)
        return None if found is None else self._render(found)

    @staticmethod
    def _render(found: GatewayResponse) -> FlaskResponse:
        headers = dict(found.headers)
        mimetype = headers.pop("Content-Type", "application/json")
        return FlaskResponse(found.body, status=found.status, headers=headers, mimetype=mimetype)

    def before_request(self) -> FlaskResponse | None:
        """Refusals API Gateway makes before any authorizer or function runs, and the request body
        as API Gateway passes it on."""
        g.received_ms = time.time_ns() // 1_000_000  # the events' requestTimeEpoch
        if request.endpoint in self._endpoints and f"{request.endpoint}:{request.method}" not in self._routes:
            # Flask serves HEAD for every GET rule; API Gateway has no such method (nor does SAM:
            # its route lookup raised KeyError, a 502).
            return self.flask_response("MISSING_AUTHENTICATION_TOKEN", status_class=4)
        if (request.content_length or 0) > MAX_PAYLOAD_BYTES:
            return self.flask_response("REQUEST_TOO_LARGE", status_class=4)
        self._pass_body_as_text()
        return None

    def _pass_body_as_text(self) -> None:
        """A body whose media type is not one of the API's binaryMediaTypes reaches a Lambda proxy
        integration as text (isBase64Encoded false), its bytes read as UTF-8; bytes that are not
        UTF-8 (a gzip stream, Latin-1) arrive as U+FFFD. SAM's gateway instead fails on them with
        its own 502 before any function runs (aws/aws-sam-cli#7927). So such a body is handed to
        SAM already decoded that way, and the function answers it (a 415 for a Content-Encoding, a
        400 for a body that is not JSON), as it would on AWS."""
        if request.mimetype in self.binary_media_types or "*/*" in self.binary_media_types:
            return  # SAM base64-encodes these itself, as API Gateway does
        data = request.get_data()  # cached by werkzeug: SAM's event builder reads the same bytes
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            # werkzeug keeps the body it read in `_cached_data`; there is no public setter
            request._cached_data = data.decode("utf-8", "replace").encode("utf-8")

    def after_request(self, response: Any) -> Any:
        if response.headers.get("X-Content-Type-Options"):
            return response  # a function's own answer (they all carry the security headers)
        found = self._answer_for(response.status_code, response.get_json(silent=True))
        if found is not None:
            return self._render(found)
        for name, value in self.common_headers.items():  # an answer that is no error: HEAD, openapi
            response.headers.setdefault(name, value)
        return response

    def _answer_for(self, status: int, body: Any) -> GatewayResponse | None:
        """The gateway response for SAM's own answer `status`, `body` (None: not an error)."""
        answer = (status, body)
        kinds: tuple[str, ...] = ()
        if g.get("authorizer_unauthorized") or answer == _SAM_MISSING_IDENTITY:
            kinds = ("UNAUTHORIZED",)
        elif answer == _SAM_DENIED:
            kinds = ("ACCESS_DENIED",)
        elif answer == _SAM_NO_ROUTE or status in (404, 405):
            kinds = ("MISSING_AUTHENTICATION_TOKEN",)
        elif status == 413:
            kinds = ("REQUEST_TOO_LARGE",)
        elif status >= 500 and g.get("authorizer_ran") and not g.get("function_ran"):
            kinds = _AUTHORIZER_FAILURE_TYPES
        elif status < 400:
            return None
        # a type the template leaves out falls back by the type's own status class, not SAM's
        status_class = 5 if kinds == _AUTHORIZER_FAILURE_TYPES or (not kinds and status >= 500) else 4
        return self.response(*kinds, status_class=status_class)


class _GatewayRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, with the refusals the HTTP server makes itself before any WSGI
    code runs (a header line or request line too long: 431, 414; a malformed request: 400) given
    the gateway's security headers and a problem+json body (RFC 9457, `about:blank`: the status
    says it all) instead of http.server's HTML page."""

    common_headers: Mapping[str, str] = {}

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        status = HTTPStatus(code)
        body = json.dumps(
            {"type": "about:blank", "title": status.phrase, "status": code, "detail": status.description},
            separators=(",", ":"),
        ).encode()
        self.close_connection = True
        self.send_response(code, status.phrase)
        for name, value in self.common_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)


class Gateway:
    """SAM's local API Gateway bound to a socket. Use `start()` (blocking) or
    `start_in_thread()` ... `stop()` (or `with gateway.start_in_thread(): ...`)."""

    def __init__(
        self,
        service: LocalApigwService,
        host: str,
        port: int,
        gateway_responses: Mapping[str, GatewayResponse] | None = None,
    ) -> None:
        self.service = service
        self.routes: list[Route] = list(service.api.routes)
        service.create()
        answers = GatewayAnswers(gateway_responses or {}, service)
        self.common_headers = answers.common_headers
        service._app.before_request(answers.before_request)
        service._app.after_request(answers.after_request)
        handler = type("RequestHandler", (_GatewayRequestHandler,), {"common_headers": self.common_headers})
        # threaded like SAM's own run() (which we avoid: it calls Flask's app.run and installs a
        # SIGTERM handler, neither of which can be stopped from another thread).
        self._server: BaseWSGIServer = make_server(
            host, port, service._app, threaded=True, request_handler=handler
        )
        self.host = host
        self.port = self._server.server_port  # the real port when port=0
        # samcli reads .port per request for the event's X-Forwarded-Port header
        service.port = self.port
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()
        self.subscriptions: LogSubscriptions | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve until `stop()` is called from another thread or Ctrl+C; then release the port."""
        for route in self.routes:
            LOG.info(
                "Mounting %s at %s%s [%s]",
                route.function_name,
                self.url,
                route.path,
                ", ".join(route.methods),
            )
        self._serving.set()
        # werkzeug's serve_forever closes the listening socket when it returns
        self._server.serve_forever(poll_interval=0.1)

    def start_in_thread(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("gateway already started")
        self._thread = threading.Thread(target=self.start, name=f"sam-gateway-{self.port}", daemon=True)
        self._thread.start()
        self._serving.wait()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, join the serving thread and close the listening socket. Idempotent."""
        if self._serving.is_set():
            self._server.shutdown()  # blocks until serve_forever returns; only safe once it started
            self._serving.clear()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._server.server_close()
        if self.subscriptions is not None:
            self.subscriptions.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def build_gateway(
    template_path: str,
    handlers: Mapping[str, Handler] | None = None,
    host: str = "127.0.0.1",
    port: int = 3000,
    *,
    parameter_overrides: Mapping[str, str] | None = None,
    environments: Mapping[str, Mapping[str, str]] | None = None,
) -> Gateway:
    """Discover `template_path`'s API routes with SAM's providers and bind SAM's local API Gateway.

    `handlers` maps each function's logical id (or its FunctionName) to a callable; by default,
    `handlers_from_template(template_path)`. `port=0` picks a free port (see `Gateway.port`).
    A tenant-isolated function's `LazyHandler` runs one environment per tenant (`PerTenantHandler`),
    its module imported with `environments[logical id]` set; a plain callable (a test's stand-in)
    serves every tenant.
    The socket is bound here; call `start()` or `start_in_thread()` to serve.
    """
    stacks = _stacks(template_path, parameter_overrides)
    functions = _functions(stacks)
    api = ApiProvider(stacks, cwd=str(Path(template_path).resolve().parent)).api
    if not api.routes:
        raise ValueError(f"no API routes in {template_path}")

    given: dict[str, Handler] = dict(
        handlers if handlers is not None else _lazy_handlers(functions, template_path)
    )
    by_logical_id: dict[str, Handler] = {}
    for f in functions:
        for key in (f.name, f.functionname, f.full_path):
            if key in given:
                by_logical_id[f.name] = given[key]
                break
    missing = sorted({r.function_name for r in api.routes if r.function_name not in by_logical_id})
    if missing:
        raise ValueError(f"no handler for function(s) {missing} that serve routes in {template_path}")

    configs = _configs(functions, stacks)
    for name, handler in by_logical_id.items():
        if configs[name].multi_tenant and isinstance(handler, LazyHandler):
            by_logical_id[name] = PerTenantHandler(handler, (environments or {}).get(name))
    # Concurrent, not serialized: the handlers keep each request's deadline per thread
    # (model_runtime/deadlines.py) and share their warm caches, whose refresh of a key is made by
    # one request while the others get its last known good value (docs/fault-drill.md).
    runner = InProcessRunner(by_logical_id, configs, serialize=False)
    # stderr=None: the runner then logs to whatever sys.stderr is at call time (pytest-friendly).
    # The runner is duck-typed: samcli only calls is_debugging() and invoke() on it.
    service = LocalApigwService(api=api, lambda_runner=runner, host=host, port=port, stderr=None)
    gateway = Gateway(service, host, port, gateway_responses_from_template(template_path))
    # predict's history lines to the history writer, as the template's subscription filter does
    subscribed = [s for s in subscriptions_from_template(template_path) if s.destination in by_logical_id]
    if subscribed:
        context = lambda name: LambdaContext.for_function(configs.get(name, FunctionConfig(name)))  # noqa: E731
        runner.subscriptions = LogSubscriptions(subscribed, invoker(by_logical_id, context))
        gateway.subscriptions = runner.subscriptions
    return gateway
