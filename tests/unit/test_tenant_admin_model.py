"""The tenant index and the audit trail's item design match template.yaml, and keep secrets out."""

from __future__ import annotations

import subprocess
import sys

from model_runtime.table import ATTRIBUTE_NAMES, TENANT_INDEX, TENANT_INDEX_ATTRIBUTES, AuditEntry

from tests.support import REPO_ROOT, child_environment, template_resources


def test_the_tenant_index_projects_exactly_the_listed_attributes_and_no_secret() -> None:
    # Given the template's InferenceTable
    table = template_resources()["InferenceTable"]["Properties"]
    (index,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == TENANT_INDEX]
    # Then it projects what the code lists, and never a password hash, secret digest or API key
    assert index["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": list(TENANT_INDEX_ATTRIBUTES),
    }
    assert not {"password_hash", "secret_sha256", "api_key", "api_key_id"} & set(TENANT_INDEX_ATTRIBUTES)
    assert [key["AttributeName"] for key in index["KeySchema"]] == ["tenant_id", "pk"]


def test_an_audit_entry_decodes_what_it_encodes_with_declared_names_and_a_ttl() -> None:
    entry = AuditEntry(
        "tenant-a",
        "2026-12-06T22:00:00.123Z#00112233aabbccdd",
        "ada",
        "api",
        "198.51.100.7",
        "user.create",
        "carol",
        "ok",
    )
    item = entry.to_item(expires_at=1_900_000_000)
    assert AuditEntry.from_item(item) == entry
    assert set(item) <= ATTRIBUTE_NAMES
    assert item["pk"] == {"S": "audit#tenant-a"} and item["expires_at"] == {"N": "1900000000"}
    activity = template_resources()["ActivityTable"]["Properties"]
    assert activity["TimeToLiveSpecification"]["AttributeName"] == "expires_at"


def test_the_admin_function_imports_from_its_code_uri_and_the_core_layer_alone() -> None:
    # Given a fresh interpreter with only functions/admin and the model_runtime layer on the path,
    # as Lambda runs it (no model_serving layer, no registry, no inferctl)
    code = (
        "import sys, app;"
        "heavy = {'numpy', 'sklearn', 'onnxruntime', 'registry', 'inferctl', 'model_serving'};"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))"
    )
    env = child_environment(
        [REPO_ROOT / "functions" / "admin", REPO_ROOT / "layers" / "model_runtime"],
        "admin",
        TABLE_NAME="t",
        SIGNING_KEY_ID="k",
        ACTIVITY_TABLE_NAME="a",
        MODEL_BUCKET="b",
        AWS_DEFAULT_REGION="us-east-1",
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    # Then it imports, and loads none of the ML stack or the operator's code
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
