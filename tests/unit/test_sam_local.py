"""The pieces of the Docker path that run without Docker: moto's bind address, the live-token
events for `sam local invoke`, and the container endpoint in env.json. `make test-sam-local`
runs the whole path against `sam local start-api`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from samcli.yamlhelper import yaml_parse

from local import sam_local
from local.events import write_events
from local.serve import parse_args, specific_address
from tests.support import REPO_ROOT


@pytest.mark.parametrize("address", ["127.0.0.1", "172.17.0.1", "::1"])
def test_moto_binds_to_one_named_address(address: str) -> None:
    assert specific_address(address) == address


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "localhost", ""])  # noqa: S104 - refused here
def test_a_wildcard_or_a_name_is_refused(address: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        specific_address(address)


def test_the_stack_defaults_to_loopback_and_its_own_api() -> None:
    args = parse_args([])
    assert args.moto_host == "127.0.0.1"
    assert args.serve_api is True
    assert parse_args(["--no-api", "--moto-host", "172.17.0.1"]).serve_api is False


def test_events_get_live_tokens_and_unknown_placeholders_are_reported(tmp_path: Path) -> None:
    # Given the committed events, with their token placeholders
    source = REPO_ROOT / "events"
    tokens = {"alice": "alice.live.token", "bob": "bob.live.token", "expired": "old.live.token"}
    extra = tmp_path / "source"
    extra.mkdir()
    for event in source.glob("*.json"):
        (extra / event.name).write_text(event.read_text())
    carol = {"headers": {"Authorization": "Bearer <carol-token>"}}  # a user the stack does not have
    (extra / "predict_carol.json").write_text(json.dumps(carol))
    # When they are written with live tokens
    written, unknown = write_events(tokens, tmp_path / "out", source=extra)
    # Then every event is there, each known placeholder is replaced, and the unknown one reported
    assert {path.name for path in written} == {path.name for path in extra.glob("*.json")}
    alice = json.loads((tmp_path / "out" / "predict_alice.json").read_text())
    assert alice["headers"]["Authorization"] == "Bearer alice.live.token"
    expired = json.loads((tmp_path / "out" / "predict_expired_token.json").read_text())
    assert expired["headers"]["Authorization"] == "Bearer old.live.token"
    texts = [path.read_text() for path in written]
    assert not any("<alice-token>" in text or "<bob-token>" in text for text in texts)
    assert unknown == {"<carol-token>"}


def test_containers_are_pointed_at_the_name_they_reach_moto_by(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an env.json written for moto on the Mac's loopback
    monkeypatch.setattr(sam_local, "STACK_DIR", tmp_path)
    variables = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "TABLE_NAME": "local-inference"}
    (tmp_path / "env.json").write_text(json.dumps({"LoginFunction": variables, "PredictFunction": variables}))
    # When the containers' name for it is host.docker.internal
    sam_local.point_containers_at("host.docker.internal", "http://127.0.0.1:4566")
    # Then every function's endpoint names it, with moto's port, and nothing else changes
    environments = json.loads((tmp_path / "env.json").read_text())
    for function in ("LoginFunction", "PredictFunction"):
        assert environments[function] == {
            "AWS_ENDPOINT_URL": "http://host.docker.internal:4566",
            "TABLE_NAME": "local-inference",
        }


def test_without_the_authorizer_sam_local_runs_predict_shared_with_its_own_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the template as built and the env.json the local stack wrote from it (per-tenant,
    # tenant data read only with the credentials the authorizer vends)
    monkeypatch.setattr(sam_local, "BUILT_TEMPLATE", REPO_ROOT / "template.yaml")
    monkeypatch.setattr(sam_local, "SAM_LOCAL_TEMPLATE", tmp_path / "template.sam-local.yaml")
    monkeypatch.setattr(sam_local, "STACK_DIR", tmp_path)
    written = {"TENANT_ISOLATION": "per-tenant", "TENANT_DATA_CREDENTIALS": "authorizer", "TABLE_NAME": "t"}
    (tmp_path / "env.json").write_text(
        json.dumps({"PredictFunction": written, "LoginFunction": {"TABLE_NAME": "t"}})
    )
    # When the sam local template is written (the authorizer removed: SAM CLI cannot run it)
    template = yaml_parse(sam_local.write_sam_local_template().read_text())
    # Then no authorizer runs, so nothing maps a tenant id nor vends credentials: predict is
    # deployed shared (no TenancyConfig: SAM CLI would take the client's X-Amz-Tenant-Id) and
    # reads with its own credentials (locally the stack's moto credentials; on AWS its role reads
    # no tenant data, so this setting there fails closed)
    assert "Auth" not in template["Resources"]["Api"]["Properties"]
    assert template["Parameters"]["TenantIsolation"]["Default"] == "shared"
    assert "TenancyConfig" not in template["Resources"]["PredictFunction"]["Properties"]
    predict = template["Resources"]["PredictFunction"]["Properties"]["Environment"]["Variables"]
    assert predict["TENANT_ISOLATION"] == "shared" and predict["TENANT_DATA_CREDENTIALS"] == "function"
    # And env.json, which overrides the template's values, says the same (and nothing else changes)
    environments = json.loads((tmp_path / "env.json").read_text())
    assert environments["PredictFunction"] == written | sam_local.SAM_LOCAL_PREDICT_ENVIRONMENT
    assert environments["LoginFunction"] == {"TABLE_NAME": "t"}
