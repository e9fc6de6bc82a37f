"""`inferctl <command>` (the venv's console command; `python -m inferctl <command>` is the same): the
operator's tool for tenants, users, models and signing keys.

Every command works on one deployment: a CloudFormation stack (`--stack NAME`, whose outputs
name the table, bucket and key) or explicit names (`--table/--bucket/--key-id`, or the functions'
own variables TABLE_NAME, MODEL_BUCKET, SIGNING_KEY_ID). `AWS_ENDPOINT_URL` points it at moto's
server or any AWS-compatible endpoint. Bad input is one `error: ...` line and exit status 1,
and is caught before anything is written.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from botocore.exceptions import BotoCoreError, ClientError
from model_runtime.errors import ProblemError
from model_runtime.roles import ROLES, USER
from model_runtime.settings import SettingsError
from model_runtime.table import CLASSIFICATION, DEFAULT_RUN_BUDGET_MS, MAX_RUN_BUDGET_MS
from model_runtime.tokens import SIGNING_KEY_TAG

from inferctl import audit_trail, history, machine_clients, onboarding, signing_keys, usage_plans
from inferctl.onboarding import OnboardingError
from inferctl.target import Target, configure
from registry.registration import MAX_MODEL_BYTES, RegistrationError, read_sample


@dataclass(frozen=True)
class Console:
    stdin: TextIO
    stdout: TextIO

    def say(self, line: str) -> None:
        print(line, file=self.stdout, flush=True)


Command = Callable[[argparse.Namespace, Target, Console], None]


def _read_model(path: str) -> bytes:
    """At most the cap plus one byte, from a regular file: /dev/zero never ends, and opening a
    FIFO waits for a writer, so the file's type is checked before it is opened."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise OnboardingError(f"{path} is not a regular file: give the model's file")
        with Path(path).open("rb") as file:
            data = file.read(MAX_MODEL_BYTES + 1)
    except OSError as error:
        raise OnboardingError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_MODEL_BYTES:
        raise OnboardingError(f"{path} is larger than {MAX_MODEL_BYTES} bytes, the most a model may be")
    return data


def _describe(facts: onboarding.ModelFacts) -> str:
    runtime = f"scikit-learn {facts.sklearn_version}" if facts.sklearn_version else "ONNX Runtime"
    converted = f" from {facts.source_format}" if facts.source_format != facts.model_format else ""
    probe = f"; probe: {facts.probe}" if facts.probe else ""
    task = f"classes {json.dumps(facts.classes)}" if facts.classes else facts.task
    missing = ", accepts missing values" if facts.accepts_missing else ""
    return (
        f"model {facts.version} ({facts.model_format}{converted}, {facts.n_features} features, "
        f"{task}{missing}, served by {runtime}{probe})"
    )


def _put_model(args: argparse.Namespace, target: Target, *, new_tenant: bool) -> onboarding.ModelFacts:
    data = _read_model(args.model)
    sample = None
    if args.sample:
        try:
            sample = read_sample(args.sample)
        except RegistrationError as error:
            raise OnboardingError(str(error)) from None
    return onboarding.put_model(
        target.runtime,
        args.tenant_id,
        data,
        args.max_batch,
        new_tenant=new_tenant,
        filename=args.model,
        trust_pickle=args.trust_pickle,
        sample=None if sample is None else sample.rows,
        sample_header=None if sample is None else sample.header,
        feature_names=tuple(args.feature_names.split(",")) if args.feature_names else None,
        allow_interface_change=not new_tenant and args.allow_interface_change,
    )


def _affected(console: Console, tenant_id: str, changes: tuple[str, ...]) -> None:
    if changes:
        console.say(
            f"interface changed ({'; '.join(changes)}): this affects all clients of tenant {tenant_id}"
        )


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def create_tenant(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_bucket()
    stack = usage_plans.stack_name(target.stack_name)
    plan_id = (
        usage_plans.plan_for(target.runtime, stack, args.tier) if stack else None
    )  # checked before any write
    password = _password(args, console, args.admin) if args.admin else ""  # asked before any write
    facts = _put_model(args, target, new_tenant=True)
    console.say(f"created tenant {args.tenant_id}: {_describe(facts)}, max batch {args.max_batch}")
    if args.admin:
        onboarding.create_user(target.runtime, args.admin, password, args.tenant_id, ("user", "admin"))
        console.say(f"created user {args.admin}, the tenant's first admin (roles user, admin)")
    if stack:
        usage_plans.issue_api_key(target.runtime, args.tenant_id, stack, args.tier, plan_id)
        console.say(f"tenant {args.tenant_id} is on the {args.tier} tier (its API key is on that usage plan)")
    else:
        console.say(
            f"no API key: no stack named (--stack or ${usage_plans.STACK_VARIABLE}); the authorizer "
            f"refuses the tenant until `set-tier {args.tenant_id} TIER` gives it one"
        )


def publish_model(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_bucket()
    facts = _put_model(args, target, new_tenant=False)
    console.say(
        f"published {_describe(facts)} for tenant {args.tenant_id}; "
        f"served within {target.runtime.settings.mapping_ttl_seconds} s"
    )
    _affected(console, args.tenant_id, facts.interface_changes)


def list_versions(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_bucket()
    versions = onboarding.list_versions(target.runtime, args.tenant_id)
    if args.json:
        console.say(json.dumps([asdict(version) for version in versions], indent=2))
        return
    rows = [
        [
            ("* " if v.current else "  ") + v.sha256[:12],
            v.model_format + (f" (from {v.source_format})" if v.source_format != v.model_format else ""),
            str(v.n_features),
            json.dumps(v.classes) if v.task == CLASSIFICATION else v.task,
            "changed" if v.interface_changed else "",
            _when(v.registered_at),
            v.probe,
        ]
        for v in versions
    ]
    header = ["  DIGEST", "FORMAT", "FEATURES", "CLASSES", "INTERFACE", "REGISTERED", "PROBE"]
    _print_table(console, header, rows)


def rollback(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_bucket()
    done = onboarding.rollback(
        target.runtime, args.tenant_id, args.to, allow_interface_change=args.allow_interface_change
    )
    version = done.version
    console.say(
        f"tenant {args.tenant_id} now serves model {version.sha256[:12]} ({version.model_format}, "
        f"registered {_when(version.registered_at)}); "
        f"served within {target.runtime.settings.mapping_ttl_seconds} s"
    )
    _affected(console, args.tenant_id, done.interface_changes)


def _password(args: argparse.Namespace, console: Console, username: str = "") -> str:
    if args.password_stdin:
        return console.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not console.stdin.isatty():
        raise OnboardingError("no terminal to prompt for the password: pipe it with --password-stdin")
    password = getpass.getpass(f"Password for {username or args.username}: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise OnboardingError("the passwords do not match")
    return password


def create_user(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    roles = tuple(args.role or [USER])
    onboarding.create_user(target.runtime, args.username, _password(args, console), args.tenant, roles)
    console.say(f"created user {args.username} in tenant {args.tenant} (roles {', '.join(roles)})")


def set_roles(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    onboarding.set_user_roles(target.runtime, args.username, tuple(args.roles))
    console.say(
        f"user {args.username} now has roles {', '.join(args.roles)}; a role taken away revokes its "
        f"tokens within {target.runtime.settings.mapping_ttl_seconds} s"
    )


def show_audit(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    entries = audit_trail.entries(target.runtime, args.tenant, args.limit)
    if args.json:
        console.say(json.dumps([entry.to_json() for entry in entries], indent=2))
        return
    rows = [[e.time, e.actor, e.via, e.origin, e.action, e.acted_on, e.result] for e in entries]
    _print_table(console, ["TIME", "ACTOR", "VIA", "SOURCE", "ACTION", "TARGET", "OUTCOME"], rows)


def _user_status(active: bool) -> Command:
    def run(args: argparse.Namespace, target: Target, console: Console) -> None:
        target.require_table()
        onboarding.set_user_status(target.runtime, args.username, active=active)
        if active:
            console.say(f"enabled user {args.username}")
        else:
            console.say(
                f"disabled user {args.username}: no new logins, and the tokens already issued to it are "
                f"refused within {target.runtime.settings.mapping_ttl_seconds} s"
            )

    return run


def _tenant_status(active: bool) -> Command:
    def run(args: argparse.Namespace, target: Target, console: Console) -> None:
        target.require_table()
        onboarding.set_tenant_status(target.runtime, args.tenant_id, active=active)
        state = "enabled" if active else "disabled"
        revoked = "" if active else " and its tokens issued so far revoked"
        console.say(
            f"{state} tenant {args.tenant_id}{revoked}; "
            f"effective within {target.runtime.settings.mapping_ttl_seconds} s"
        )

    return run


def set_run_budget(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    onboarding.set_run_budget(target.runtime, args.tenant_id, args.budget_ms)
    console.say(
        f"tenant {args.tenant_id}'s model runs are cut off after {args.budget_ms} ms (a 503); "
        f"effective within {target.runtime.settings.mapping_ttl_seconds} s"
    )


def revoke_tokens(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    not_before = onboarding.revoke_tokens(target.runtime, args.tenant_id)
    console.say(
        f"revoked tenant {args.tenant_id}'s tokens issued before {_when(not_before)}; "
        f"effective within {target.runtime.settings.mapping_ttl_seconds} s"
    )


def set_capture(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    history.set_capture(target, args.tenant_id, capture=args.state == "on", history_days=args.history_days)
    days = f", records kept {args.history_days} days" if args.history_days else ""
    console.say(
        f"tenant {args.tenant_id}: capture {args.state}{days}; "
        f"effective within {target.runtime.settings.mapping_ttl_seconds} s"
    )


def show_history(args: argparse.Namespace, target: Target, console: Console) -> None:
    from model_runtime.history import shown  # noqa: PLC0415

    found = history.records(target, args.tenant, args.user, args.since)
    if args.json:
        console.say(json.dumps([shown(record) for record in found], indent=2))
        return
    rows = [
        [
            r.recorded_at,
            r.request_id,
            r.subject,
            r.client_kind,
            r.model_version,
            str(r.rows),
            f"{r.latency_ms}",
        ]
        for r in found
    ]
    _print_table(console, ["TIME", "REQUEST_ID", "CALLER", "KIND", "MODEL", "ROWS", "LATENCY_MS"], rows)


def purge_history(args: argparse.Namespace, target: Target, console: Console) -> None:
    erased = history.purge(target, args.tenant, args.user)
    whose = f"{args.tenant}/{args.user}" if args.user else args.tenant
    console.say(f"erased {erased.records} history records and {erased.objects} captured objects of {whose}")


def delete_tenant(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_bucket()
    if args.confirm != args.tenant_id:
        raise OnboardingError(f"deleting erases everything of the tenant: pass --confirm {args.tenant_id}")
    deleted = history.delete_tenant(target, args.tenant_id)
    console.say(
        f"deleted tenant {args.tenant_id}: {deleted.users} users, {deleted.clients} machine clients, "
        f"{deleted.history.records} history records, {deleted.history.objects} captured objects, "
        f"{deleted.model_objects} model object versions"
    )


def _print_table(console: Console, header: Sequence[str], rows: list[list[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in [list(header), *rows]:
        console.say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def list_tenants(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    tenants = onboarding.list_tenants(target.runtime)
    if args.json:
        console.say(json.dumps([asdict(tenant) for tenant in tenants], indent=2))
        return
    header = [
        "TENANT",
        "STATUS",
        "MODEL",
        "FORMAT",
        "FEATURES",
        "MAX_BATCH",
        "CLASSES",
        "SKLEARN",
        "TOKENS_NOT_BEFORE",
        "CAPTURE",
        "HISTORY_DAYS",
    ]
    rows = [
        [
            t.tenant_id,
            t.status,
            t.model_version,
            t.model_format,
            str(t.n_features),
            str(t.max_batch),
            json.dumps(t.classes),
            t.sklearn_version or "-",
            _when(t.tokens_not_before) if t.tokens_not_before else "-",
            "on" if t.capture else "off",
            str(t.history_days),
        ]
        for t in tenants
    ]
    _print_table(console, header, rows)


def list_users(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    users = onboarding.list_users(target.runtime, args.tenant)
    if args.json:
        console.say(json.dumps([asdict(user) for user in users], indent=2))
        return
    rows = [[u.username, u.tenant_id, u.status, ",".join(u.roles), _when(u.created_at)] for u in users]
    _print_table(console, ["USERNAME", "TENANT", "STATUS", "ROLES", "CREATED"], rows)


def rotate_signing_key(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    target.require_timings()
    rotation = signing_keys.rotate_signing_key(
        target.runtime,
        args.tag_value or target.stack_name,
        force=args.force,
        progress=lambda line: console.say(line + " (Ctrl-C leaves it staged; finish-rotation drops it)"),
    )
    ready = _when(signing_keys.earliest_finish(target.runtime, rotation.rotated_at))
    console.say(
        f"rotated: {rotation.new_key_id} (tag {SIGNING_KEY_TAG}={rotation.tag_value}) signs new "
        f"tokens; {rotation.previous_key_id} still verifies. Run finish-rotation after {ready}."
    )


def finish_rotation(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    target.require_timings()
    dropped = signing_keys.finish_rotation(target.runtime, args.retire, force=args.force)
    if not dropped:
        console.say("nothing to finish: only the active key verifies")
        return
    console.say(
        f"retired {', '.join(dropped)}: tokens it signed are refused within "
        f"{target.runtime.settings.mapping_ttl_seconds} s. The KMS key still exists; schedule its deletion "
        "when you no longer need it (aws kms schedule-key-deletion)."
    )


def set_tier(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    stack = usage_plans.stack_name(target.stack_name)
    if not stack:
        raise OnboardingError(f"no stack: pass --stack NAME or set {usage_plans.STACK_VARIABLE}")
    change = usage_plans.set_tier(target.runtime, args.tenant_id, stack, args.tier)
    created = " (API key created)" if change.key_created else ""
    console.say(
        f"tenant {change.tenant_id}: tier {change.previous_tier or '-'} -> {change.tier}{created}; "
        f"the gateway applies it within {target.runtime.settings.mapping_ttl_seconds} s"
    )


def create_client(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    new = machine_clients.create_client(target.runtime, args.tenant_id, roles=tuple(args.role or [USER]))
    if args.json:
        console.say(json.dumps({"client_id": new.client_id, "client_secret": new.client_secret}))
        return
    console.say(f"created client {new.client_id} for tenant {args.tenant_id}")
    console.say(f"client_id:     {new.client_id}")
    console.say(f"client_secret: {new.client_secret}")
    console.say("Store the secret now: it is not shown again (only its SHA-256 is kept).")


def revoke_client(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    machine_clients.revoke_client(target.runtime, args.client_id)
    console.say(
        f"revoked client {args.client_id}: no new tokens, and its issued tokens are refused within "
        f"{target.runtime.settings.mapping_ttl_seconds} s"
    )


def list_clients(args: argparse.Namespace, target: Target, console: Console) -> None:
    target.require_table()
    clients = machine_clients.list_clients(target.runtime, args.tenant)
    if args.json:
        console.say(json.dumps([asdict(client) for client in clients], indent=2))
        return
    rows = [[c.client_id, c.tenant_id, c.status, ",".join(c.roles), _when(c.created_at)] for c in clients]
    _print_table(console, ["CLIENT_ID", "TENANT", "STATUS", "ROLES", "CREATED"], rows)


# --- the command line ------------------------------------------------------------------------

TARGET_HELP = """\
Deployment: --stack NAME (its outputs TableName, ModelBucketName, SigningKeyId), or --table,
--bucket, --key-id, or the environment variables TABLE_NAME, MODEL_BUCKET, SIGNING_KEY_ID.
AWS_ENDPOINT_URL points every call at moto's server or another AWS-compatible endpoint.
"""


def _target_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("deployment")
    group.add_argument(
        "--stack", metavar="NAME", help="CloudFormation stack whose outputs name the resources"
    )
    group.add_argument("--table", metavar="NAME", help="DynamoDB table (default: $TABLE_NAME)")
    group.add_argument("--bucket", metavar="NAME", help="S3 model bucket (default: $MODEL_BUCKET)")
    group.add_argument(
        "--key-id", metavar="ID", help="the template's KMS signing key (default: $SIGNING_KEY_ID)"
    )
    group.add_argument("--region", metavar="REGION", help="AWS region (default: boto3's own configuration)")
    return common


def _model_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--model",
        required=True,
        metavar="FILE",
        help="model file: .skops (skops.io.dump) or .onnx (skl2onnx, zipmap off); XGBoost .json/.ubj or "
        "LightGBM .txt; a pickle only with --trust-pickle",
    )
    sub.add_argument(
        "--trust-pickle",
        action="store_true",
        help="accept a .pkl/.joblib file: loading it runs any code it holds, so only for a model you "
        "trained yourself; it is converted (to ONNX, else skops) and never stored as a pickle",
    )
    sub.add_argument(
        "--sample",
        metavar="FILE",
        help="probe rows (JSON rows, or CSV whose first row may name the columns: then as the model's "
        "feature names) the converted model must agree on (default: rows generated from the model's "
        "parameters)",
    )
    sub.add_argument(
        "--feature-names",
        metavar="A,B,C",
        help="the model's feature names, in column order (default: the model's feature_names_in_); "
        "clients may then send rows as objects keyed by them",
    )


def _interface_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--allow-interface-change",
        action="store_true",
        help="serve a version whose task, features, feature names, classes (or their order) or "
        "probabilities differ from the active one's: every client of the tenant must be ready for it",
    )


def build_parser(prog: str = "inferctl") -> argparse.ArgumentParser:  # noqa: PLR0915 - one statement per option, in one place
    parser = argparse.ArgumentParser(
        prog=prog,  # the command as invoked: the console script, or `python -m inferctl`
        description="Operate the multi-tenant inference API: tenants, users, models, signing keys.",
        epilog=TARGET_HELP,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_target_options()]

    def command(name: str, run: Command, help_text: str, description: str = "") -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=common,
            help=help_text,
            description=description or help_text,
            epilog=TARGET_HELP,
        )
        sub.set_defaults(run=run)
        return sub

    sub = command(
        "create-tenant",
        create_tenant,
        "onboard a tenant with its first model",
        "Onboard a tenant: check the model (.onnx or .skops; a pickle only with --trust-pickle), "
        "convert a scikit-learn model to ONNX and prove it agrees on a probe set, upload it "
        "content-addressed and pin its SHA-256, format, n_features and classes.",
    )
    sub.add_argument("tenant_id", metavar="TENANT_ID", help="1-64 lower-case letters, digits and '-'")
    _model_options(sub)
    sub.add_argument(
        "--max-batch",
        type=int,
        default=onboarding.DEFAULT_MAX_BATCH,
        metavar="N",
        help=f"most rows per request (default {onboarding.DEFAULT_MAX_BATCH})",
    )
    sub.add_argument(
        "--tier",
        default=usage_plans.DEFAULT_TIER,
        metavar="TIER",
        help=f"usage plan tier of its API key (default {usage_plans.DEFAULT_TIER}; needs --stack or "
        f"${usage_plans.STACK_VARIABLE})",
    )
    sub.add_argument(
        "--admin",
        metavar="USERNAME",
        help="also create the tenant's first admin (roles user and admin); its password is prompted "
        "for, or read from stdin with --password-stdin",
    )
    sub.add_argument("--password-stdin", action="store_true", help="read the admin's password from stdin")

    sub = command(
        "publish-model",
        publish_model,
        "publish a new model version for a tenant",
        "Publish a new model version (same checks as create-tenant). Containers serve it within the "
        "mapping cache TTL; the tenant's status and revocations are kept.",
    )
    sub.add_argument("tenant_id", metavar="TENANT_ID")
    _model_options(sub)
    sub.add_argument("--max-batch", type=int, metavar="N", help="change the batch cap (default: keep it)")
    _interface_option(sub)

    sub = command("list-versions", list_versions, "list a tenant's registered model versions")
    sub.add_argument("tenant_id", metavar="TENANT_ID")
    sub.add_argument("--json", action="store_true", help="print JSON")

    sub = command(
        "rollback",
        rollback,
        "serve a previous model version",
        "Point the tenant at a previously registered version (default: the one registered before the "
        "current one), after checking its bytes still match their digest. Served within the mapping TTL.",
    )
    sub.add_argument("tenant_id", metavar="TENANT_ID")
    sub.add_argument("--to", metavar="DIGEST", help="the version's digest (12 hex digits or more)")
    _interface_option(sub)

    sub = command(
        "create-user",
        create_user,
        "create a login for a tenant",
        "Create a login. The password is prompted for (twice), or read from one line of stdin with "
        "--password-stdin; it is never taken from the command line.",
    )
    sub.add_argument("username", metavar="USERNAME")
    sub.add_argument("--tenant", required=True, metavar="TENANT_ID")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    sub.add_argument(
        "--role",
        action="append",
        choices=ROLES,
        help="a role (repeat for both): user (predict, model card; default), admin (the tenant-admin API)",
    )

    sub = command(
        "set-roles",
        set_roles,
        "give a user exactly these roles",
        "Set a user's roles (user, admin). Taking a role away revokes the user's tokens, which carry "
        "it; a tenant's last active admin keeps admin.",
    )
    sub.add_argument("username", metavar="USERNAME")
    sub.add_argument("roles", nargs="+", choices=ROLES, metavar="ROLE", help="user and/or admin")

    sub = command(
        "audit",
        show_audit,
        "show a tenant's audit trail (admin actions, API and CLI)",
        "Print a tenant's audit trail, newest first: who did what, when, from where, and the outcome.",
    )
    sub.add_argument("--tenant", required=True, metavar="TENANT_ID")
    sub.add_argument("--limit", type=int, default=50, metavar="N", help="at most N entries (default 50)")
    sub.add_argument("--json", action="store_true", help="print JSON")

    for name, active in (("disable-user", False), ("enable-user", True)):
        sub = command(
            name,
            _user_status(active),
            f"{name.split('-')[0]} a login",
            "Disabling stops new logins and revokes the user's issued tokens: predict refuses them "
            "within the mapping TTL."
            if not active
            else "Allow a disabled user to log in again; tokens from before the disable stay revoked.",
        )
        sub.add_argument("username", metavar="USERNAME")

    for name, active in (("disable-tenant", False), ("enable-tenant", True)):
        sub = command(
            name,
            _tenant_status(active),
            f"{name.split('-')[0]} a tenant",
            "A disabled tenant's users cannot log in and its tokens get 403, within the mapping TTL; "
            "the tokens issued before the disable are revoked."
            if not active
            else "Serve a disabled tenant again; tokens issued before the disable stay revoked, so "
            "its users and clients log in again.",
        )
        sub.add_argument("tenant_id", metavar="TENANT_ID")

    sub = command(
        "set-run-budget",
        set_run_budget,
        "set how long one request may run a tenant's model",
        f"Predict cuts off a run of the tenant's model past this many milliseconds and answers 503 "
        f"(default {DEFAULT_RUN_BUDGET_MS}, at most {MAX_RUN_BUDGET_MS}; docs/hostile-models.md).",
    )
    sub.add_argument("tenant_id", metavar="TENANT_ID")
    sub.add_argument("budget_ms", type=int, metavar="MS")

    sub = command(
        "revoke-tokens",
        revoke_tokens,
        "refuse every token a tenant holds now",
        "Set the tenant's tokens_not_before to now: every token issued so far is refused (401); users "
        "log in again.",
    )
    sub.add_argument("tenant_id", metavar="TENANT_ID")

    sub = command(
        "set-capture",
        set_capture,
        "turn a tenant's data capture on or off, and set its history retention",
        "With capture on, each history record also holds the request's rows and the answer "
        "(docs/history.md). --history-days: how long records are kept (1-400, default 30).",
    )
    sub.add_argument("tenant_id", metavar="TENANT_ID")
    sub.add_argument("state", choices=["on", "off"])
    sub.add_argument("--history-days", type=int, metavar="DAYS")

    sub = command("history", show_history, "list a tenant's inference history, newest first")
    sub.add_argument("--tenant", required=True, metavar="TENANT_ID")
    sub.add_argument("--user", metavar="USER_OR_CLIENT_ID")
    sub.add_argument("--since", metavar="ISO_TIME", help="e.g. 2026-12-01 or 2026-12-01T08:00:00Z (UTC)")
    sub.add_argument("--json", action="store_true")

    sub = command(
        "purge-history",
        purge_history,
        "erase a tenant's (or one caller's) history records and captured objects",
        "For a data-subject request: every record in the activity table and every captured object "
        "(all versions) under the tenant's prefix.",
    )
    sub.add_argument("--tenant", required=True, metavar="TENANT_ID")
    sub.add_argument("--user", metavar="USER_OR_CLIENT_ID")

    sub = command(
        "delete-tenant",
        delete_tenant,
        "erase a tenant: mapping, API key, users, machine clients, history, captures and models",
        "Its tokens are refused at once (no mapping); nothing of it is left in the table or the "
        "bucket (every object version).",
    )
    sub.add_argument("tenant_id", metavar="TENANT_ID")
    sub.add_argument("--confirm", required=True, metavar="TENANT_ID", help="the tenant id again")

    sub = command("list-tenants", list_tenants, "list tenants and their pinned models")
    sub.add_argument("--json", action="store_true", help="print JSON")

    sub = command("list-users", list_users, "list logins (never their password hashes)")
    sub.add_argument("--tenant", metavar="TENANT_ID", help="only this tenant's users")
    sub.add_argument("--json", action="store_true", help="print JSON")

    sub = command(
        "rotate-signing-key",
        rotate_signing_key,
        "create a new KMS signing key and make it active",
        f"Create a KMS RSA_2048 SIGN_VERIFY key tagged {SIGNING_KEY_TAG}=<stack name> (what the "
        "functions' IAM policies match), add it to the key ring, wait one mapping TTL so every "
        "container trusts it, then sign with it. The previous key keeps verifying until finish-rotation.",
    )
    sub.add_argument(
        "--tag-value", metavar="VALUE", help="tag value (default: --stack, else the active key's own tag)"
    )
    sub.add_argument("--force", action="store_true", help="rotate even if the last rotation is not finished")

    sub = command(
        "finish-rotation",
        finish_rotation,
        "stop verifying tokens signed by retired keys",
        "Drop the previous signing key(s) from the key ring once the tokens they signed have expired.",
    )
    sub.add_argument("--retire", metavar="KEY_ID", help="drop only this key (default: every non-active key)")
    sub.add_argument("--force", action="store_true", help="drop it even if its tokens may still be live")

    sub = command(
        "set-tier",
        set_tier,
        "move a tenant to another usage plan tier",
        "Move the tenant's API key to the usage plan of TIER (rate, burst, daily quota; the stack's "
        "plans are tagged inference-tier=TIER). A tenant without a key gets one. Needs --stack or "
        f"${usage_plans.STACK_VARIABLE}.",
    )
    sub.add_argument("tenant_id", metavar="TENANT_ID")
    sub.add_argument("tier", metavar="TIER", help="e.g. standard or premium")

    sub = command(
        "create-client",
        create_client,
        "create a machine client (OAuth2 client credentials) for a tenant",
        "Create a machine client: prints its client id and a 256-bit secret once; only the secret's "
        "SHA-256 is stored. The client gets tokens with grant_type=client_credentials and HTTP Basic.",
    )
    sub.add_argument("tenant_id", metavar="TENANT_ID")
    sub.add_argument("--json", action="store_true", help='print {"client_id", "client_secret"}')
    sub.add_argument(
        "--role",
        action="append",
        choices=ROLES,
        help="its scopes: user (predict, model card; the default), admin (the tenant-admin API)",
    )

    sub = command(
        "revoke-client",
        revoke_client,
        "stop a machine client from getting tokens",
        "Revoke a machine client: no new tokens, and predict refuses its issued tokens within the "
        "mapping TTL.",
    )
    sub.add_argument("client_id", metavar="CLIENT_ID")

    sub = command("list-clients", list_clients, "list machine clients (never their secrets)")
    sub.add_argument("--tenant", metavar="TENANT_ID", help="only this tenant's clients")
    sub.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    prog: str = "inferctl",
) -> int:
    args = build_parser(prog).parse_args(argv)
    console = Console(stdin or sys.stdin, stdout or sys.stdout)
    try:
        target = configure(
            stack=args.stack, table=args.table, bucket=args.bucket, key_id=args.key_id, region=args.region
        )
        audit_trail.audited(
            args.command, lambda: args.run(args, target, console), target.runtime, args, sys.stderr
        )
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the one boundary: every failure is one line, never a traceback
        message = _error_line(error)
    else:
        return 0
    print(f"error: {_one_line(message)}", file=sys.stderr)
    return 1


def _error_line(error: Exception) -> str:
    """What the operator reads for `error`: what went wrong and, where it is not plain, what to do."""
    if isinstance(error, OnboardingError):
        return str(error)
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{error.operation_name}: {details.get('Code', 'Error')}: {details.get('Message', '')}"
    if isinstance(error, BotoCoreError):
        return str(error)
    if isinstance(error, SettingsError):
        return f"{error}: fix that environment variable (or unset it for the default)"
    if isinstance(error, ProblemError):  # a model's own checks, e.g. on --sample rows
        return f"{error.detail} (in the rows given to the model; check --sample)"
    return (
        f"unexpected {type(error).__name__}: {error} (check the command's inputs; if they are "
        "right, report it with the command you ran)"
    )
