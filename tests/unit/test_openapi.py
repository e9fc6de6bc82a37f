"""openapi.json is generated from the code and cannot drift from it or from template.yaml."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import pytest
from openapi_spec_validator import validate
from samcli.yamlhelper import yaml_parse

from tests.support import EXPECTED_SECURITY_HEADERS, REPO_ROOT, TEMPLATE, current_runtime

COMMITTED = REPO_ROOT / "openapi.json"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    # scripts/ is not a package: load the script by path, as `python scripts/make_openapi.py` would.
    spec = importlib.util.spec_from_file_location("make_openapi", REPO_ROOT / "scripts" / "make_openapi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(COMMITTED.read_text())
    return loaded


def template_routes() -> set[tuple[str, str]]:
    template = yaml_parse(TEMPLATE.read_text())
    routes = set()
    for resource in template["Resources"].values():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event["Type"] == "Api":
                routes.add((event["Properties"]["Method"].lower(), event["Properties"]["Path"]))
        # routes written in an API's definition body (predict's: template.yaml says why)
        for path, methods in (
            ((resource.get("Properties") or {}).get("DefinitionBody") or {}).get("paths", {}).items()
        ):
            routes.update((method, path) for method in methods)
    return routes


def test_committed_document_is_what_the_code_generates(generator: ModuleType) -> None:
    # Given the committed openapi.json
    # When the document is generated afresh from the handlers and limits
    fresh = generator.render(generator.build_document())
    # Then they are identical (regenerate with `python scripts/make_openapi.py`)
    assert COMMITTED.read_text() == fresh


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_template_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    # Given the routes API Gateway serves (template.yaml's Api events)
    routes = template_routes()
    # Then the document describes exactly those operations
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert routes, "no Api events in template.yaml"
    assert documented == routes


def test_limits_come_from_the_code(document: dict[str, Any]) -> None:
    # Given the limits the code enforces
    from model_runtime.passwords import MAX_PASSWORD_CHARS  # noqa: PLC0415

    schemas = document["components"]["schemas"]
    predict = document["paths"]["/api/v1/predict"]["post"]
    # Then the document states them
    assert predict["requestBody"]["x-max-body-bytes"] == current_runtime().settings.max_body_bytes
    assert schemas["TokenRequest"]["properties"]["password"]["maxLength"] == MAX_PASSWORD_CHARS


def test_every_response_declares_the_security_headers(document: dict[str, Any]) -> None:
    headers = document["components"]["headers"]
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert headers[name]["required"] is True
        assert headers[name]["schema"]["const"] == value
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                declared = set(response["headers"])
                assert set(EXPECTED_SECURITY_HEADERS) <= declared, f"{method} {path} {status}"


def test_authenticated_operations_require_a_bearer_token(document: dict[str, Any]) -> None:
    # The predict function's routes need a token; login's must not (they issue and verify it).
    for path, item in document["paths"].items():
        for method, operation in item.items():
            needs_token = path.startswith("/api/v1/") and path != "/api/v1/auth/token"
            assert bool(operation["security"]) == needs_token, f"{method} {path}"
            if needs_token:
                assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
