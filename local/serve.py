"""`make serve`: the whole service on loopback, with moto's server standing in for AWS.

    python -m local.serve [--port 3000] [--moto-port 0] [--moto-host 127.0.0.1] [--no-api]
                          [--env-file .local/env.json] [--aws-endpoint URL]
                          [--parameter-overrides Name=Value ...]

One process, no child processes: moto's server (the table, bucket and KMS key, created from
`template.yaml`'s own resource definitions) and SAM CLI's local API Gateway serving the template's
routes (`local.gateway`) each run in a thread, and the main thread waits for Ctrl-C or SIGTERM,
then stops both.
With `--aws-endpoint URL` (or LOCAL_AWS_ENDPOINT), no moto thread is started: the resources and
demo tenants are created at that AWS-compatible endpoint, already running in another process (a
`moto_server`, say), which an operator can then stall (SIGSTOP) or stop to rehearse an outage
(`make fault-drill`, docs/fault-drill.md). `--parameter-overrides` sets template parameters
(MappingTtlSeconds=5, ...) as `sam local start-api --parameter-overrides` does.
The functions run in-process with the environment the template gives them (`local.resources`).
Two demo tenants are onboarded through the operator CLI; their passwords exist only here.

It writes `.local/env.json`, an env-vars file with which `sam local start-api` (Docker) runs the
functions against the same moto server, and `.local/env.sh`, which points a shell's operator CLI
at it: `. .local/env.sh && python -m inferctl list-tenants`. Containers do not share the host's
loopback, so `make sam-local` (`local.sam_local`) binds moto to Docker's bridge address instead
(`--moto-host`) and serves no in-process API (`--no-api`): `sam local start-api` is the API.
"""

from __future__ import annotations

import argparse
import gc
import io
import ipaddress
import logging
import os
import re
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Self
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from flask import Response
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from local.gateway import (
    FunctionConfig,
    Gateway,
    Handler,
    LambdaContext,
    build_gateway,
    handlers_from_template,
)
from local.post_policy import PostPolicyCheck
from local.resources import (
    TEMPLATE,
    ResourceNames,
    create_resources_from_template,
    create_usage_plans_from_template,
    function_environments,
    load_template,
    write_env_file,
)
from local.upload_events import UploadPoller

REPO_ROOT = TEMPLATE.parent
STACK_NAME = "local"  # stands in for the CloudFormation stack name: table prefix and key tag
HOST = "127.0.0.1"  # loopback only: the demo passwords below are public
DEFAULT_ENV_FILE = REPO_ROOT / ".local" / "env.json"
OPENAPI_DOCUMENT = REPO_ROOT / "openapi.json"

LOG = logging.getLogger("local.serve")
# Names the stack whose usage plans the operator CLI uses (inferctl.usage_plans.STACK_VARIABLE;
# not imported: the CLI needs the layer's package, importable only once the functions are loaded).
STACK_VARIABLE = "INFERENCE_STACK"


@dataclass(frozen=True)
class DemoTenant:
    tenant_id: str
    model_file: str
    username: str
    password: str
    feature_names: str = ""  # --feature-names, for a model fitted without them


# The regression demo (Ridge on scikit-learn's diabetes data, 10 named features) is trained when
# the stack starts (`train_regression_demo`): a second committed pickle would add nothing.
REGRESSION_DEMO_FILE = ".local/model_user_c.pkl"
DIABETES_FEATURES = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6"
DEMO_TENANTS = (
    DemoTenant("tenant-a", "models/model_user_a.pkl", "alice", "alice-local-demo"),
    DemoTenant("tenant-b", "models/model_user_b.pkl", "bob", "bob-local-demo"),
    DemoTenant("tenant-c", REGRESSION_DEMO_FILE, "carol", "carol-local-demo", DIABETES_FEATURES),
)


def train_regression_demo(path: Path) -> None:
    """Carol's model: Ridge on the diabetes data set (a regressor: predictions are numbers)."""
    import joblib  # noqa: PLC0415 - only the demo onboarding needs scikit-learn
    from sklearn.datasets import load_diabetes  # noqa: PLC0415
    from sklearn.linear_model import Ridge  # noqa: PLC0415

    X, y = load_diabetes(return_X_y=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(Ridge().fit(X, y), path)


# Set for the in-process functions on top of the template's environment: there is no X-Ray daemon
# here, and the console shows one readable line per request rather than every JSON log line and
# metrics blob (`--verbose` shows those: the functions' INFO logs and EMF metrics).
LOCAL_FUNCTION_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}
QUIET_FUNCTION_ENV = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}


class _QuietMotoHandler(MotoRequestHandler):
    """moto's request handler without a log line per AWS call (the API's requests are logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class MotoServer:
    """moto's server in a thread of this process, like `moto.server.ThreadedMotoServer`, but bound
    at construction (a busy port fails at once) and quiet."""

    def __init__(self, host: str = HOST, port: int = 0) -> None:
        # S3's checks of form POSTs (signature, expiry, key, size range), which moto skips: the
        # tenant-admin upload forms are refused here as S3 would refuse them (local/post_policy.py).
        secret = lambda: os.environ.get("AWS_SECRET_ACCESS_KEY", "")  # noqa: E731 - set by use_endpoint
        app = PostPolicyCheck(DomainDispatcherApplication(create_backend_app), secret)
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietMotoHandler
        )
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def use_endpoint(endpoint: str, region: str) -> None:
    """Point every boto3 client of this process at `endpoint` with fake credentials, and make sure
    nothing (profile, config file, per-service endpoint) can send a call to real AWS instead."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_") or name in {
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
        }:
            del os.environ[name]
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - moto accepts any credentials
        AWS_DEFAULT_REGION=region,
        AWS_REGION=region,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )


def serve_openapi(gateway: Gateway, document: Path = OPENAPI_DOCUMENT) -> None:
    """GET /openapi.json: the committed API description (`scripts/make_openapi.py`), for
    schemathesis and browsers. Local only: the deployed API has no such route. Read per request,
    so a regenerated document is served without a restart."""

    def openapi() -> Response:
        body = document.read_bytes()
        return Response(body, mimetype="application/json", headers={"Cache-Control": "no-store"})

    gateway.service._app.add_url_rule("/openapi.json", "openapi", openapi, methods=["GET"])


class LocalStack:
    """moto's server, the template's resources in it, the demo tenants, and the API in front."""

    def __init__(
        self,
        port: int = 3000,
        *,
        moto_port: int = 0,
        env_file: Path | None = None,
        region: str = "us-east-1",
        template: Path = TEMPLATE,
        verbose: bool = False,
        moto_host: str = HOST,
        serve_api: bool = True,
        aws_endpoint: str | None = None,
        parameter_overrides: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.aws_endpoint = aws_endpoint  # None: moto's server in a thread of this process
        self.parameter_overrides = dict(parameter_overrides or {})
        self.moto_port = moto_port
        self.moto_host = moto_host
        self.serve_api = serve_api
        self.env_file = env_file
        self.region = region
        self.template = template
        self.function_env = LOCAL_FUNCTION_ENV if verbose else LOCAL_FUNCTION_ENV | QUIET_FUNCTION_ENV
        self.moto: MotoServer | None = None
        self.gateway: Gateway | None = None
        self.names: ResourceNames | None = None
        self.uploads: UploadPoller | None = None

    @property
    def endpoint(self) -> str:
        """Where the functions' AWS calls go: the outside endpoint, or this process's moto."""
        if self.aws_endpoint is not None:
            return self.aws_endpoint
        assert self.moto is not None, "start() first"
        return self.moto.url

    @property
    def url(self) -> str:
        assert self.gateway is not None, "start() first"
        return self.gateway.url

    def start(self) -> Self:
        """Start everything, or stop whatever had started and raise."""
        try:
            if self.aws_endpoint is None:
                self.moto = MotoServer(host=self.moto_host, port=self.moto_port).start()
            use_endpoint(self.endpoint, self.region)
            self.names = create_resources_from_template(
                boto3.session.Session(), prefix=STACK_NAME, template=self.template
            )
            # The tiers' usage plans, so onboarding gives each tenant its API key (which the
            # authorizer returns); the local gateway does not enforce usage plans.
            create_usage_plans_from_template(boto3.session.Session(), STACK_NAME, template=self.template)
            os.environ[STACK_VARIABLE] = STACK_NAME
            environments = function_environments(
                self.names,
                stack_name=STACK_NAME,
                region=self.region,
                parameter_overrides=self.parameter_overrides,
                template=self.template,
            )
            if self.env_file is not None:
                self._write_env_files(environments)
            handlers, loaded_with = self._load_functions(environments)
            self._onboard_demo_tenants()
            self._deliver_uploads(handlers)
            if not self.serve_api:
                return self
            gateway = build_gateway(
                str(self.template),
                handlers,
                host=HOST,
                port=self.port,
                parameter_overrides=self.parameter_overrides,
                environments=loaded_with,
            )
            serve_openapi(gateway)
            self.gateway = gateway.start_in_thread()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_env_files(self, environments: dict[str, dict[str, str]]) -> None:
        """`env.json` for `sam local start-api --env-vars`, and `env.sh` for a shell that runs the
        operator CLI against this stack (`. .local/env.sh; python -m inferctl list-tenants`)."""
        assert self.env_file is not None and self.names is not None
        endpoint = {"AWS_ENDPOINT_URL": self.endpoint}
        write_env_file(self.env_file, {fn: env | endpoint for fn, env in environments.items()})
        cli = endpoint | {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": self.region,
            "TABLE_NAME": self.names.table_name,
            "MODEL_BUCKET": self.names.bucket,
            "SIGNING_KEY_ID": self.names.key_id,
            "ACTIVITY_TABLE_NAME": self.names.activity_table,  # inferctl history, purge-history, audit
            STACK_VARIABLE: STACK_NAME,
        }
        # The timings key rotation waits on (inferctl requires them without --stack): the stack's own
        predict = environments.get("PredictFunction", {})
        timings = ("MAPPING_TTL_SECONDS", "TOKEN_TTL_SECONDS")
        cli |= {name: predict[name] for name in timings if name in predict}
        lines = [f"export {name}={shlex.quote(value)}" for name, value in cli.items()]
        self.env_file.with_suffix(".sh").write_text(
            "# the local stack's moto server (make serve)\n" + "\n".join(lines) + "\n"
        )

    def _load_functions(
        self, environments: dict[str, dict[str, str]]
    ) -> tuple[dict[str, Handler], dict[str, dict[str, str]]]:
        """Import each function's handler with its own environment, as its container would; returns
        the handlers and the environment each was imported with (a tenant-isolated function's
        module is imported again with it for each tenant: local/gateway.py `PerTenantHandler`).

        They share one process, so `os.environ` ends up holding every function's variables: the
        template gives them no conflicting values except POWERTOOLS_SERVICE_NAME, which Powertools
        reads when the handler module is imported, i.e. here, one function at a time. Importing now
        also means the first request does not wait for scikit-learn.
        """
        handlers = handlers_from_template(str(self.template))
        loaded_with: dict[str, dict[str, str]] = {}
        for function, handler in handlers.items():
            # AWS_* (endpoint, credentials, region) belong to the stack: use_endpoint set them.
            template_env = {
                k: v for k, v in environments.get(function, {}).items() if not k.startswith("AWS_")
            }
            loaded_with[function] = template_env | self.function_env
            os.environ.update(loaded_with[function])
            handler.load()
        return dict(handlers), loaded_with

    def _onboard_demo_tenants(self) -> None:
        # Imported here, not at the top: only the demo onboarding needs the CLI (and scikit-learn).
        from inferctl.cli import main as inferctl  # noqa: PLC0415

        def run(*argv: str, stdin: str = "") -> None:
            output = io.StringIO()
            if inferctl(list(argv), stdin=io.StringIO(stdin), stdout=output) != 0:
                raise RuntimeError(f"inferctl {' '.join(argv[:2])} failed (see the error above)")
            LOG.debug(output.getvalue().strip())

        train_regression_demo(REPO_ROOT / REGRESSION_DEMO_FILE)
        for demo in DEMO_TENANTS:
            # The demo models are this repository's own training output: trusted pickles, converted
            # to ONNX (and proven against the originals) at registration.
            model = str(REPO_ROOT / demo.model_file)
            names = ("--feature-names", demo.feature_names) if demo.feature_names else ()
            run("create-tenant", demo.tenant_id, "--model", model, "--trust-pickle", *names)
            run(
                "create-user",
                demo.username,
                "--tenant",
                demo.tenant_id,
                "--password-stdin",
                stdin=demo.password,
            )

    def _deliver_uploads(self, handlers: dict[str, Handler]) -> None:
        """moto sends no S3 event: the poller invokes the registering function for each upload,
        with the event the bucket's EventBridge rule would deliver (local/upload_events.py)."""
        register = handlers.get("RegisterFunction")
        if register is None or self.names is None:
            return
        config = FunctionConfig("RegisterFunction", memory_mb=2048, timeout_s=120)
        self.uploads = UploadPoller(
            boto3.session.Session().client("s3"),
            self.names.bucket,
            lambda event: register(event, LambdaContext.for_function(config)),
        )
        self.uploads.start()

    def stop(self) -> None:
        """Stop the upload poller and the API, then moto. Idempotent; safe after a failed start."""
        if self.uploads is not None:
            self.uploads.stop()
            self.uploads = None
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class _RequestLog(logging.Filter):
    """werkzeug's `127.0.0.1 - - [date] "POST /path HTTP/1.1" 200 -` as `POST /path HTTP/1.1 200`,
    without werkzeug's colours when the log is not a terminal."""

    _ACCESS = re.compile(r'"%s" %s %s$')
    _COLOUR = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, colour: bool) -> None:
        super().__init__()
        self.colour = colour

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 3 and self._ACCESS.search(str(record.msg)):
            line, status = str(record.args[0]), record.args[1]
            record.msg, record.args = "%s %s", (line if self.colour else self._COLOUR.sub("", line), status)
        return True


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("werkzeug").addFilter(_RequestLog(colour=sys.stderr.isatty()))
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials..." per client
    if not verbose:
        logging.getLogger("local.gateway").setLevel(logging.WARNING)  # one "Mounting" line per route


def specific_address(value: str) -> str:
    """An address to bind moto to: one interface's (loopback, or Docker's bridge for containers),
    never a wildcard, which would offer the stack's AWS APIs to the whole network."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r} is not an IP address") from error
    if address.is_unspecified:
        raise argparse.ArgumentTypeError(f"{value} listens on every interface: name one address")
    return value


def aws_endpoint(value: str) -> str:
    """An http(s) URL with a host and nothing after it: where the stack's AWS calls go."""
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/"):
        raise argparse.ArgumentTypeError(f"{value!r} is not an endpoint URL such as http://127.0.0.1:5000")
    return value.rstrip("/")


def parameter_override(value: str) -> tuple[str, str]:
    """`Name=Value`, Name one of the template's parameters."""
    name, equals, setting = value.partition("=")
    if not equals or name not in (load_template().get("Parameters") or {}):
        raise argparse.ArgumentTypeError(f"{value!r} is not Name=Value for a parameter of template.yaml")
    return name, setting


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.serve",
        description="Serve the API locally on moto, with two demo tenants (make serve).",
        epilog="With Docker, `make sam-local` runs the same functions in containers with "
        "`sam local start-api`, against a moto server on Docker's bridge address.",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("PORT", "3000"),  # argparse applies `type` to a string default
        help="API port (default $PORT or 3000)",
    )
    parser.add_argument(
        "--moto-port",
        type=int,
        default=os.environ.get("MOTO_PORT", "0"),
        help="moto server port (default $MOTO_PORT, or any free port)",
    )
    parser.add_argument(
        "--moto-host",
        type=specific_address,
        default=HOST,
        help="address moto listens on (default 127.0.0.1; Docker's bridge address for sam local)",
    )
    parser.add_argument(
        "--no-api",
        dest="serve_api",
        action="store_false",
        help="moto, the resources and the demo tenants only: another gateway (sam local) serves the API",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=DEFAULT_ENV_FILE,
        help="where to write the env-vars file for `sam local` (default .local/env.json; env.sh beside it)",
    )
    parser.add_argument(
        "--aws-endpoint",
        type=aws_endpoint,
        default=os.environ.get("LOCAL_AWS_ENDPOINT") or None,
        help="an AWS-compatible endpoint already running (e.g. moto_server): create the resources "
        "and demo tenants there instead of starting moto (default $LOCAL_AWS_ENDPOINT)",
    )
    parser.add_argument(
        "--parameter-overrides",
        type=parameter_override,
        nargs="+",
        default=[],
        metavar="Name=Value",
        help="template parameters for the functions, e.g. MappingTtlSeconds=5",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also show the routes and the functions' INFO logs and metrics"
    )
    args = parser.parse_args(argv)
    if args.aws_endpoint and (args.moto_port or args.moto_host != HOST):
        parser.error("--aws-endpoint replaces moto: leave out --moto-port and --moto-host")
    return args


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    # Ctrl-C and SIGTERM both unwind the main thread to the `finally` below. Installed explicitly:
    # a shell starts background jobs with SIGINT ignored, and SIGTERM would otherwise kill at once.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)

    stack = LocalStack(
        args.port,
        moto_port=args.moto_port,
        env_file=args.env_file,
        verbose=args.verbose,
        moto_host=args.moto_host,
        serve_api=args.serve_api,
        aws_endpoint=args.aws_endpoint,
        parameter_overrides=dict(args.parameter_overrides),
    )
    try:
        stack.start()
        users = ", ".join(f"{demo.username}/{demo.password}" for demo in DEMO_TENANTS)
        api = stack.url if args.serve_api else "no API"
        aws = f"moto at {stack.endpoint}" if args.aws_endpoint is None else f"AWS endpoint {stack.endpoint}"
        print(f"Serving {api} ({aws}) — demo users {users}. Ctrl-C to stop.", flush=True)
        while True:
            # Python runs signal handlers in the main thread only, and the kernel may deliver a
            # signal to any thread: a short sleep (not an untimed wait) lets the handler run soon.
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except OSError as error:  # a busy port is reported by werkzeug itself (and exits 1)
        print(f"error: cannot start the local stack: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:  # the outside endpoint is down, or already used
        reason = error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
        print(
            f"error: cannot create the stack at {args.aws_endpoint or 'moto'} ({reason}): "
            "start a fresh AWS-compatible endpoint there, then run this again",
            file=sys.stderr,
        )
        return 1
    finally:
        stack.stop()
    LOG.info("stopped")
    # Everything this process started has stopped. What is left is the interpreter's own teardown,
    # whose garbage collections over moto's and samcli's large heaps take seconds; frozen objects
    # are skipped, so Ctrl-C gives the prompt back at once.
    gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
