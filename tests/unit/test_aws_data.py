"""The functions' botocore session reads botocore's data files with orjson: the same data as
botocore's own loader, found the same way."""

from __future__ import annotations

import botocore.loaders
import pytest
from model_runtime.aws_data import OrjsonFileLoader, fast_session
from model_runtime.runtime import Runtime
from model_runtime.settings import read_settings


@pytest.mark.parametrize(
    ("type_name", "service"),
    [
        ("service-2", "dynamodb"),
        ("service-2", "s3"),
        ("service-2", "kms"),
        ("endpoint-rule-set-1", "s3"),
        ("endpoint-rule-set-1", "dynamodb"),
    ],
)
def test_a_service_model_reads_as_botocore_reads_it(type_name: str, service: str) -> None:
    # Given botocore's own loader and the functions' one
    ours = fast_session().get_component("data_loader")
    theirs = botocore.loaders.Loader()
    # When each loads the service's file (gzip-compressed in botocore's data)
    # Then the data are equal
    assert ours.load_service_model(service, type_name) == theirs.load_service_model(service, type_name)
    assert isinstance(ours.file_loader, OrjsonFileLoader)


def test_endpoints_and_a_missing_file_read_as_botocore_reads_them() -> None:
    ours, theirs = OrjsonFileLoader(), botocore.loaders.JSONFileLoader()
    data_path = botocore.loaders.Loader.BUILTIN_DATA_PATH
    assert ours.load_file(f"{data_path}/endpoints") == theirs.load_file(f"{data_path}/endpoints")
    assert ours.exists(f"{data_path}/endpoints") and not ours.exists(f"{data_path}/no-such-file")
    assert ours.load_file(f"{data_path}/no-such-file") is None


def test_the_functions_clients_come_from_the_fast_session(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a runtime of a function (no caller-given boto3 session)
    for name in ("TABLE_NAME", "MODEL_BUCKET", "SIGNING_KEY_ID"):
        monkeypatch.setenv(name, "unit")
    runtime = Runtime(read_settings())
    # Then its botocore session parses data with orjson, and its clients work from that data
    assert isinstance(runtime.botocore_session.get_component("data_loader").file_loader, OrjsonFileLoader)
    assert runtime.client("kms").meta.service_model.operation_model("GetPublicKey").name == "GetPublicKey"
