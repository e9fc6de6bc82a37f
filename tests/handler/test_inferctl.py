"""The operator CLI (`inferctl`, or `python -m inferctl`), run in-process against moto's `mock_aws`.

What it guards: a mapping pins what the registered model says (digest of the served bytes,
format, n_features, classes); bad input is one `error:` line, exit status 1, and *nothing written*;
publishing a version keeps the operator's status and revocations; user listings never carry
hashes; revocation and key rotation have the effect the request path relies on.
"""

from __future__ import annotations

import io
import json
import runpy
from pathlib import Path
from typing import Any

import boto3
import joblib
import jwt
import numpy as np
import pytest
import sklearn
import sklearn.base
import skops.io
from model_runtime.access import resolve_tenant
from model_runtime.errors import Forbidden, Unauthorized
from model_runtime.passwords import verify_password
from model_runtime.table import KEYRING_PK, user_pk
from model_serving.models import sha256_hex
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from inferctl import signing_keys
from inferctl.cli import build_parser, main
from inferctl.onboarding import revoke_tokens
from local.resources import create_usage_plans_from_template
from registry.registration import RegistrationError, register
from tests.support import (
    MODELS_DIR,
    CliRun,
    Stack,
    current_runtime,
    token_for,
    use_runtime,
)

# --- helpers ---------------------------------------------------------------------------------


def fitted(n_features: int = 3, labels: tuple[Any, ...] = (0, 1)) -> LogisticRegression:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(40, n_features))
    targets = [labels[i % len(labels)] for i in range(40)]
    return LogisticRegression().fit(rows, targets)


def model_file(tmp_path: Path, model: Any, name: str = "model.skops") -> Path:
    """The model as a skops file, or as a joblib pickle when `name` ends in .pkl."""
    path = tmp_path / name
    if path.suffix == ".pkl":
        joblib.dump(model, path)
    else:
        path.write_bytes(skops.io.dumps(model))
    return path


def world(stack: Stack) -> tuple[list[str], list[str]]:
    """Every table item and every S3 key: what a failed command must leave unchanged."""
    items = current_runtime().dynamodb.scan(TableName=stack.table_name)["Items"]
    objects = current_runtime().s3.list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    return sorted(json.dumps(item, sort_keys=True) for item in items), sorted(o["Key"] for o in objects)


def assert_refused(run: CliRun, *fragments: str) -> None:
    assert run.code == 1
    assert run.out == ""
    assert run.err.startswith("error: ")
    assert run.err.count("\n") == 1, run.err  # one line
    for fragment in fragments:
        assert fragment in run.err


# --- create-tenant / publish-model -----------------------------------------------------------


def test_create_tenant_pins_what_the_model_says(stack: Stack, inferctl: Any, tmp_path: Path) -> None:
    # Given a fitted 3-feature classifier with string labels, as a skops file
    path = model_file(tmp_path, fitted(3, ("cat", "dog")))
    # When an operator onboards a tenant with it
    run = inferctl("create-tenant", "tenant-c", "--model", str(path), "--max-batch", "50")
    # Then the mapping pins the ONNX conversion's digest and the model's own facts
    assert run.code == 0, run.err
    tenant = stack.tenant("tenant-c")
    served = current_runtime().s3.get_object(Bucket=stack.bucket, Key=tenant.model_key)["Body"].read()
    assert tenant.model_sha256 == sha256_hex(served)
    assert tenant.model_key == f"models/tenant-c/{tenant.model_sha256}.onnx"
    assert (tenant.n_features, tenant.classes, tenant.max_batch) == (3, ("cat", "dog"), 50)
    assert (tenant.model_format, tenant.sklearn_version) == ("onnx", "")
    assert tenant.active and tenant.tokens_not_before == 0
    # And the operator is told what was registered and the probe result
    assert tenant.model_version in run.out
    assert "onnx from skops" in run.out and "rows agree" in run.out


def test_create_tenant_defaults_max_batch_to_1000(stack: Stack, inferctl: Any, tmp_path: Path) -> None:
    # Given a model
    path = model_file(tmp_path, fitted())
    # When a tenant is created without --max-batch
    assert inferctl("create-tenant", "tenant-c", "--model", str(path)).code == 0
    # Then it gets the documented default
    assert stack.tenant("tenant-c").max_batch == 1000


def old_sklearn_pickle(tmp_path: Path) -> Path:
    """A model whose pickle says it was saved by scikit-learn 1.0.0."""
    model = fitted()
    real = sklearn.base.__version__
    sklearn.base.__version__ = "1.0.0"  # what BaseEstimator.__getstate__ records
    try:
        return model_file(tmp_path, model, "old.pkl")
    finally:
        sklearn.base.__version__ = real


BAD_MODELS: dict[str, tuple[Any, tuple[str, ...], str]] = {
    "missing file": (lambda tmp: tmp / "nope.skops", (), "cannot read"),
    "not a skops file": (lambda tmp: _write(tmp / "x.skops", b"\x00not a zip"), (), "not a skops file"),
    "unknown format": (lambda tmp: _write(tmp / "x.txt", b"hello"), (), "unknown model format .txt"),
    "pickle, no --trust-pickle": (lambda tmp: model_file(tmp, fitted(), "m.pkl"), (), "refusing a pickle"),
    "not a pickle": (
        lambda tmp: _write(tmp / "x.pkl", b"\x00not a pickle"),
        ("--trust-pickle",),
        "not a joblib/pickle model",
    ),
    "unfitted": (lambda tmp: model_file(tmp, LogisticRegression()), (), "not fitted"),
    "transformer": (
        lambda tmp: model_file(tmp, StandardScaler().fit([[0], [1]])),
        (),
        "not a scikit-learn classifier or regressor",
    ),
    "not an estimator": (lambda tmp: model_file(tmp, {"predict": 1}), (), "not a scikit-learn classifier"),
    "other sklearn version": (old_sklearn_pickle, ("--trust-pickle",), "saved with scikit-learn 1.0.0"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_bad_model_file_is_refused_before_any_write(
    demo: Stack, inferctl: Any, tmp_path: Path, case: str
) -> None:
    # Given a model file that must not be served
    make, flags, message = BAD_MODELS[case]
    path = make(tmp_path)
    before = world(demo)
    # When it is used to create a tenant, or as a new version of an existing one
    for argv in (("create-tenant", "tenant-c"), ("publish-model", "tenant-a")):
        run = inferctl(*argv, "--model", str(path), *flags)
        # Then the command fails with one line naming the problem, and nothing is written
        assert_refused(run, message)
        assert world(demo) == before


def test_other_sklearn_version_names_both_versions(tmp_path: Path) -> None:
    # Given a pickle from scikit-learn 1.0.0
    data = old_sklearn_pickle(tmp_path).read_bytes()
    # When it is registered as a trusted pickle
    with pytest.raises(RegistrationError) as refused:
        register("old.pkl", data, trust_pickle=True)
    # Then the operator learns which version to re-export with
    assert "1.0.0" in str(refused.value) and sklearn.__version__ in str(refused.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("create-tenant", "Tenant_A"), "tenant ids are"),
        (("create-tenant", "t" * 65), "tenant ids are"),
        (("create-tenant", "tenant-a"), "already exists"),  # demo tenant
        (("create-tenant", "tenant-c", "--max-batch", "0"), "max_batch"),
        (("create-tenant", "tenant-c", "--max-batch", "100001"), "max_batch"),
        (("publish-model", "tenant-zz"), "unknown tenant"),
    ],
)
def test_bad_tenant_input_is_refused_before_the_upload(
    demo: Stack, inferctl: Any, tmp_path: Path, argv: tuple[str, ...], message: str
) -> None:
    # Given a valid model file the bucket does not hold yet
    path = model_file(tmp_path, fitted())
    before = world(demo)
    # When a command around it is wrong
    run = inferctl(*argv, "--model", str(path))
    # Then nothing is uploaded or written (the upload would be harmless, but it is not even made)
    assert_refused(run, message)
    assert world(demo) == before


def test_publish_model_changes_the_model_and_keeps_status_and_revocation(
    demo: Stack, inferctl: Any, tmp_path: Path
) -> None:
    # Given tenant-a disabled with its tokens revoked, and a new 3-feature model version
    assert inferctl("disable-tenant", "tenant-a").code == 0
    assert inferctl("revoke-tokens", "tenant-a").code == 0
    before = demo.tenant("tenant-a")
    path = model_file(tmp_path, fitted(3, (5, 6, 7)))
    # When the operator publishes it (another interface: tests/handler/test_model_interface.py)
    run = inferctl("publish-model", "tenant-a", "--model", str(path), "--allow-interface-change")
    # Then the mapping pins the new model
    assert run.code == 0, run.err
    after = demo.tenant("tenant-a")
    assert after.model_sha256 != before.model_sha256
    assert (after.n_features, after.classes, after.model_format) == (3, (5, 6, 7), "onnx")
    # And what the operator decided about the tenant is unchanged
    assert (after.status, after.tokens_not_before, after.max_batch) == (
        "disabled",
        before.tokens_not_before,
        before.max_batch,
    )
    # And the previous version's object is still there (content-addressed, never overwritten)
    assert current_runtime().s3.head_object(Bucket=demo.bucket, Key=before.model_key)


def test_publish_model_can_change_max_batch(demo: Stack, inferctl: Any) -> None:
    # Given tenant-b
    # When its model is republished with a new batch cap
    run = inferctl(
        "publish-model",
        "tenant-b",
        "--model",
        str(MODELS_DIR / "model_user_b.pkl"),
        "--trust-pickle",
        "--max-batch",
        "10",
    )
    # Then the cap changes and the model stays the same
    assert run.code == 0, run.err
    assert demo.tenant("tenant-b").max_batch == 10


# --- users -----------------------------------------------------------------------------------


def test_create_user_reads_the_password_from_stdin_and_stores_only_a_hash(demo: Stack, inferctl: Any) -> None:
    # Given tenant-a
    # When a user is created with the password piped in
    run = inferctl(
        "create-user", "carol", "--tenant", "tenant-a", "--password-stdin", stdin="carol-password-1\n"
    )
    # Then the user belongs to tenant-a and the stored hash verifies that password (newline stripped)
    assert run.code == 0, run.err
    user = current_runtime().table.get_user("carol")
    assert user is not None and user.tenant_id == "tenant-a" and user.active
    assert verify_password(user.password_hash, "carol-password-1")
    item = current_runtime().dynamodb.get_item(
        TableName=demo.table_name, Key={"pk": {"S": user_pk("carol")}}
    )["Item"]
    assert "carol-password-1" not in json.dumps(item)


def test_the_password_cannot_be_given_on_the_command_line() -> None:
    # Given the parser
    # When a password is passed as an argument
    # Then it is a usage error (argv is visible to every process on the machine)
    with pytest.raises(SystemExit) as usage:
        build_parser().parse_args(["create-user", "carol", "--tenant", "tenant-a", "--password", "secret-pw"])
    assert usage.value.code == 2


def test_create_user_without_a_terminal_or_stdin_flag_is_refused(demo: Stack, inferctl: Any) -> None:
    # Given no terminal to prompt on (stdin is a pipe) and no --password-stdin
    # When a user is created
    run = inferctl("create-user", "carol", "--tenant", "tenant-a", stdin="carol-password-1\n")
    # Then the CLI refuses rather than reading a password it did not prompt for
    assert_refused(run, "--password-stdin")
    assert current_runtime().table.get_user("carol") is None


def test_create_user_prompts_twice_and_refuses_a_mismatch(
    demo: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a terminal where the operator types two different passwords
    answers = iter(["carol-password-1", "carol-password-2"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    terminal = io.StringIO()
    monkeypatch.setattr(terminal, "isatty", lambda: True)
    # When a user is created
    code = main(["create-user", "carol", "--tenant", "tenant-a"], stdin=terminal, stdout=io.StringIO())
    # Then it is refused and no user exists
    assert code == 1
    assert "do not match" in capsys.readouterr().err
    assert current_runtime().table.get_user("carol") is None


@pytest.mark.parametrize(
    "case",
    [
        ("alice", "tenant-a", "long-enough-pw", "already exists"),
        ("carol", "tenant-zz", "long-enough-pw", "unknown tenant"),
        ("carol", "Tenant_A", "long-enough-pw", "tenant ids are"),
        ("carol", "tenant-a", "short", "passwords are 8"),
        ("carol;drop", "tenant-a", "long-enough-pw", "usernames are"),
    ],
)
def test_bad_user_input_is_refused_and_writes_nothing(
    demo: Stack, inferctl: Any, case: tuple[str, str, str, str]
) -> None:
    # Given the demo stack
    username, tenant, password, message = case
    before = world(demo)
    # When a user is created with bad input
    run = inferctl("create-user", username, "--tenant", tenant, "--password-stdin", stdin=password)
    # Then one error line, and the table is unchanged (alice keeps her own password hash)
    assert_refused(run, message)
    assert world(demo) == before


def test_disable_and_enable_user(demo: Stack, inferctl: Any) -> None:
    # Given alice, active
    # When she is disabled, then enabled again
    assert inferctl("disable-user", "alice").code == 0
    disabled = current_runtime().table.get_user("alice")
    assert inferctl("enable-user", "alice").code == 0
    # Then her status follows (the login function refuses a user that is not active)
    assert disabled is not None and not disabled.active
    enabled = current_runtime().table.get_user("alice")
    assert enabled is not None and enabled.active


def test_disable_and_enable_tenant(demo: Stack, inferctl: Any) -> None:
    # Given tenant-b, active
    # When it is disabled
    run = inferctl("disable-tenant", "tenant-b")
    # Then its mapping is not active, so predict answers 403 for its tokens
    assert run.code == 0, run.err
    assert not demo.tenant("tenant-b").active
    with pytest.raises(Forbidden):
        resolve_tenant(current_runtime(), current_runtime().tokens.verify(token_for("bob", "tenant-b")))
    # And enabling it serves it again, to tokens issued after the disable (those from before it
    # stay revoked)
    assert inferctl("enable-tenant", "tenant-b").code == 0
    fresh = token_for("bob", "tenant-b", now=demo.tenant("tenant-b").tokens_not_before)
    assert resolve_tenant(current_runtime(), current_runtime().tokens.verify(fresh)).tenant_id == "tenant-b"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("disable-user", "nobody"), "unknown user"),
        (("enable-user", "nobody"), "unknown user"),
        (("disable-tenant", "tenant-zz"), "unknown tenant"),
        (("enable-tenant", "tenant-zz"), "unknown tenant"),
        (("revoke-tokens", "tenant-zz"), "unknown tenant"),
    ],
)
def test_unknown_names_are_refused_and_not_created(
    demo: Stack, inferctl: Any, argv: tuple[str, ...], message: str
) -> None:
    # Given the demo stack
    before = world(demo)
    # When a status command names a user or tenant that does not exist
    run = inferctl(*argv)
    # Then it fails, and does not create a stub item (an update would, unconditionally)
    assert_refused(run, message)
    assert world(demo) == before


def test_revoke_tokens_refuses_every_token_issued_so_far(demo: Stack, inferctl: Any) -> None:
    # Given a token bob got just now (same second as the revocation, the edge case)
    claims = current_runtime().tokens.verify(token_for("bob", "tenant-b"))
    assert resolve_tenant(current_runtime(), claims).tenant_id == "tenant-b"
    # When the operator revokes tenant-b's tokens
    run = inferctl("revoke-tokens", "tenant-b")
    # Then that token is refused (401), and alice's tenant is untouched
    assert run.code == 0, run.err
    with pytest.raises(Unauthorized):
        resolve_tenant(current_runtime(), claims)
    assert (
        resolve_tenant(
            current_runtime(), current_runtime().tokens.verify(token_for("alice", "tenant-a"))
        ).tenant_id
        == "tenant-a"
    )


def test_revocation_covers_a_token_issued_in_the_same_second(demo: Stack) -> None:
    # Given a token issued in the very second the operator then revokes (iat has whole seconds)
    claims = current_runtime().tokens.verify(token_for("bob", "tenant-b"))
    # When the tenant's tokens are revoked in that second
    revoke_tokens(current_runtime(), "tenant-b", now=claims.issued_at)
    use_runtime()
    # Then that token is refused too
    with pytest.raises(Unauthorized):
        resolve_tenant(current_runtime(), claims)


# --- listings --------------------------------------------------------------------------------


def test_list_users_never_shows_password_hashes(demo: Stack, inferctl: Any) -> None:
    # Given alice and bob, whose items hold argon2 hashes
    # When users are listed, as a table and as JSON
    table = inferctl("list-users")
    as_json = inferctl("list-users", "--json")
    # Then both users are there with their tenants, and no hash in either output
    assert table.code == as_json.code == 0
    assert "alice" in table.out and "tenant-b" in table.out
    users = json.loads(as_json.out)
    assert [(u["username"], u["tenant_id"], u["status"]) for u in users] == [
        ("alice", "tenant-a", "active"),
        ("bob", "tenant-b", "active"),
    ]
    assert all("password_hash" not in user for user in users)
    assert "argon2" not in table.out + as_json.out


def test_list_users_of_one_tenant(demo: Stack, inferctl: Any) -> None:
    # Given two tenants' users
    # When listing one tenant's
    users = json.loads(inferctl("list-users", "--tenant", "tenant-b", "--json").out)
    # Then only that tenant's users are listed
    assert [user["username"] for user in users] == ["bob"]


def test_list_tenants(demo: Stack, inferctl: Any) -> None:
    # Given the two demo tenants
    # When tenants are listed
    run = inferctl("list-tenants", "--json")
    # Then each shows its model's facts
    tenants = {t["tenant_id"]: t for t in json.loads(run.out)}
    assert set(tenants) == {"tenant-a", "tenant-b"}
    assert tenants["tenant-a"]["n_features"] == 4 and tenants["tenant-b"]["n_features"] == 13
    assert tenants["tenant-a"]["model_version"] == demo.tenant("tenant-a").model_version
    assert "tenant-a" in inferctl("list-tenants").out


# --- signing key rotation --------------------------------------------------------------------


@pytest.fixture
def no_cache_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    """Key rings re-read on every request, and a rotation's wait of one cache lifetime is zero.
    Both timings are set explicitly, as rotation requires without --stack."""
    monkeypatch.setenv("MAPPING_TTL_SECONDS", "0")
    monkeypatch.setenv("TOKEN_TTL_SECONDS", "900")
    use_runtime()


def keyring_item(stack: Stack) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        current_runtime()
        .dynamodb.get_item(TableName=stack.table_name, Key={"pk": {"S": KEYRING_PK}})
        .get("Item")
    )
    return item


def test_rotation_keeps_old_tokens_valid_and_signs_with_a_new_tagged_key(
    demo: Stack, inferctl: Any, no_cache_ttl: None
) -> None:
    # Given a token signed by the template's key
    old_token = token_for("alice", "tenant-a")
    # When the operator rotates
    run = inferctl("rotate-signing-key")
    # Then a new RSA_2048 signing key, tagged like the template's (what the IAM policies match), is active
    assert run.code == 0, run.err
    ring = current_runtime().table.get_keyring("")
    new_key = ring.active_key_id
    assert new_key != demo.key_id
    assert ring.verify_key_ids == (new_key, demo.key_id)
    kms = current_runtime().kms
    metadata = kms.describe_key(KeyId=new_key)["KeyMetadata"]
    assert (metadata["KeySpec"], metadata["KeyUsage"]) == ("RSA_2048", "SIGN_VERIFY")
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=new_key)["Tags"]}
    assert tags == {"inference-signing-key": "test"}  # the fixture's stack name
    # And old tokens still verify while new ones are signed by the new key
    assert current_runtime().tokens.verify(old_token).subject == "alice"
    new_token = token_for("alice", "tenant-a")
    assert current_runtime().tokens.verify(new_token).subject == "alice"
    assert jwt.get_unverified_header(new_token)["kid"] == current_runtime().tokens.key_kid(new_key)


def test_rotation_stages_the_new_key_for_verification_before_signing_with_it(
    demo: Stack, no_cache_ttl: None
) -> None:
    # Given the template's key signs
    seen: list[tuple[str, tuple[str, ...], str]] = []

    def observe_wait(_seconds: float) -> None:
        ring = current_runtime().table.get_keyring("")
        kid = jwt.get_unverified_header(token_for("alice", "tenant-a"))["kid"]
        seen.append((ring.active_key_id, ring.verify_key_ids, kid))

    # When a rotation waits for the containers' caches
    rotation = signing_keys.rotate_signing_key(current_runtime(), sleep=observe_wait)
    # Then during the wait the new key already verifies, but the old one still signs
    assert seen == [
        (demo.key_id, (demo.key_id, rotation.new_key_id), current_runtime().tokens.key_kid(demo.key_id)),
    ]


def test_finish_rotation_waits_for_old_tokens_to_expire(
    demo: Stack, inferctl: Any, no_cache_ttl: None
) -> None:
    # Given a rotation just done, and a token signed by the old key
    old_token = token_for("alice", "tenant-a")
    assert inferctl("rotate-signing-key").code == 0
    before = keyring_item(demo)
    # When the operator finishes it at once
    early = inferctl("finish-rotation")
    # Then it is refused: the old key's tokens may still be live
    assert_refused(early, "may be valid until")
    assert keyring_item(demo) == before
    # And a second rotation is refused too until this one is finished
    assert_refused(inferctl("rotate-signing-key"), "finish-rotation")
    # When forced
    forced = inferctl("finish-rotation", "--force")
    # Then only the new key verifies: old tokens are refused, new ones accepted
    assert forced.code == 0, forced.err
    ring = current_runtime().table.get_keyring("")
    assert ring.verify_key_ids == (ring.active_key_id,)
    with pytest.raises(Unauthorized):
        current_runtime().tokens.verify(old_token)
    assert current_runtime().tokens.verify(token_for("bob", "tenant-b")).tenant_id == "tenant-b"
    # And a finished ring has nothing more to finish
    assert "nothing to finish" in inferctl("finish-rotation").out


def test_finish_rotation_after_the_token_lifetime_needs_no_force(demo: Stack, no_cache_ttl: None) -> None:
    # Given a rotation
    rotation = signing_keys.rotate_signing_key(current_runtime(), sleep=lambda _: None)
    # When finish-rotation runs after token TTL + leeway + cache TTL have passed
    dropped = signing_keys.finish_rotation(
        current_runtime(), now=signing_keys.earliest_finish(current_runtime(), rotation.rotated_at)
    )
    # Then the previous key is dropped
    assert dropped == (demo.key_id,)


def test_the_active_key_cannot_be_retired(demo: Stack, inferctl: Any, no_cache_ttl: None) -> None:
    # Given a rotation
    assert inferctl("rotate-signing-key").code == 0
    active = current_runtime().table.get_keyring("").active_key_id
    # When the operator tries to retire the active key, or a key that is not in the ring
    # Then both are refused
    assert_refused(inferctl("finish-rotation", "--retire", active, "--force"), "is the active signing key")
    assert_refused(inferctl("finish-rotation", "--retire", "not-a-key", "--force"), "not in the key ring")


def test_rotation_needs_a_tag_value(demo: Stack, inferctl: Any, no_cache_ttl: None) -> None:
    # Given an active key without the inference-signing-key tag
    kms = current_runtime().kms
    kms.untag_resource(KeyId=demo.key_id, TagKeys=["inference-signing-key"])
    keys_before = kms.list_keys()["Keys"]
    # When the operator rotates without --tag-value or --stack
    run = inferctl("rotate-signing-key")
    # Then it is refused before any key is created
    assert_refused(run, "--tag-value")
    assert kms.list_keys()["Keys"] == keys_before
    # And with --tag-value the new key carries it
    assert inferctl("rotate-signing-key", "--tag-value", "prod").code == 0
    new_key = current_runtime().table.get_keyring("").active_key_id
    assert kms.list_resource_tags(KeyId=new_key)["Tags"] == [
        {"TagKey": "inference-signing-key", "TagValue": "prod"}
    ]


# --- where the CLI writes ----------------------------------------------------------------------


def create_stack(stack: Stack, name: str, mapping_ttl: str = "7") -> None:
    """A CloudFormation stack in moto whose outputs name the fixture's resources."""
    template = {
        "Parameters": {"MappingTtlSeconds": {"Type": "Number", "Default": 60}},
        "Resources": {"Placeholder": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {
            "TableName": {"Value": stack.table_name},
            "ModelBucketName": {"Value": stack.bucket},
            "SigningKeyId": {"Value": stack.key_id},
        },
    }
    boto3.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "MappingTtlSeconds", "ParameterValue": mapping_ttl}],
    )
    create_usage_plans_from_template(boto3.session.Session(), name)  # the stack's tiers


def test_stack_outputs_name_the_resources(
    demo: Stack, inferctl: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a deployed stack and no resource names in the environment
    create_stack(demo, "prod")
    for name in ("TABLE_NAME", "MODEL_BUCKET", "SIGNING_KEY_ID", "MAPPING_TTL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    # When commands run with --stack
    listed = inferctl("list-tenants", "--json", "--stack", "prod")
    created = inferctl(
        "create-tenant", "tenant-c", "--model", str(model_file(tmp_path, fitted())), "--stack", "prod"
    )
    disabled = inferctl("disable-tenant", "tenant-c", "--stack", "prod")
    # Then they work on the stack's table and bucket, with its parameters
    assert {t["tenant_id"] for t in json.loads(listed.out)} == {"tenant-a", "tenant-b"}
    assert created.code == 0, created.err
    assert "within 7 s" in disabled.out  # the stack's MappingTtlSeconds
    monkeypatch.setenv("TABLE_NAME", demo.table_name)
    use_runtime()
    assert not demo.tenant("tenant-c").active


def test_unknown_stack_is_one_error_line(demo: Stack, inferctl: Any) -> None:
    # Given no stack called "nope"
    # When a command names it
    # Then the CLI says so on one line
    assert_refused(inferctl("list-tenants", "--stack", "nope"), "stack 'nope'")


def test_explicit_names_win_and_aws_errors_are_one_line(demo: Stack, inferctl: Any) -> None:
    # Given a table name that does not exist, given explicitly
    # When a command runs
    run = inferctl("list-users", "--table", "no-such-table")
    # Then the AWS error is reported on one line, with exit status 1
    assert_refused(run, "ResourceNotFoundException")


def test_missing_resources_are_named(stack: Stack, inferctl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no table configured anywhere
    monkeypatch.delenv("TABLE_NAME")
    # When a command needs it
    # Then the error says how to give it
    assert_refused(inferctl("list-tenants"), "--stack NAME or --table")


def all_commands() -> list[str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    return sorted(subparsers.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", all_commands())
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a command
    # When it is asked for --help
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    # Then it explains itself, including where it writes, and exits 0
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: inferctl {command}") and "--stack" in text


def test_the_usage_line_names_the_command_as_invoked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the console script's entry point (pyproject: inferctl = "inferctl.cli:main")
    # When it is asked for help / Then the usage line names `inferctl`
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith("usage: inferctl ")
    # Given `python -m inferctl` (the package's __main__)
    monkeypatch.setattr("sys.argv", ["inferctl/__main__.py", "--help"])
    # When it is asked for help / Then the usage line names `python -m inferctl`
    with pytest.raises(SystemExit):
        runpy.run_module("inferctl", run_name="__main__")
    assert capsys.readouterr().out.startswith("usage: python -m inferctl ")


def test_the_required_commands_exist() -> None:
    # Given the operator runbook in the README
    # Then every command it names exists
    assert set(all_commands()) >= {
        "create-tenant",
        "publish-model",
        "create-user",
        "disable-user",
        "enable-user",
        "disable-tenant",
        "enable-tenant",
        "revoke-tokens",
        "list-tenants",
        "list-users",
        "rotate-signing-key",
        "finish-rotation",
    }
