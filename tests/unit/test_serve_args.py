"""`python -m local.serve`'s options for running against an outside AWS endpoint: what an operator
types is checked at once, with one line that says what to do."""

from __future__ import annotations

import pytest

from local.serve import parse_args


def test_the_endpoint_comes_from_the_option_or_local_aws_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_AWS_ENDPOINT", raising=False)
    assert parse_args([]).aws_endpoint is None  # moto in a thread of its own, as before
    assert parse_args(["--aws-endpoint", "http://127.0.0.1:5000/"]).aws_endpoint == "http://127.0.0.1:5000"
    monkeypatch.setenv("LOCAL_AWS_ENDPOINT", "http://127.0.0.1:5001")  # `LOCAL_AWS_ENDPOINT=URL make serve`
    assert parse_args([]).aws_endpoint == "http://127.0.0.1:5001"


@pytest.mark.parametrize(
    "value", ["127.0.0.1:5000", "ftp://127.0.0.1", "http://", "http://127.0.0.1:5000/path"]
)
def test_an_endpoint_that_is_not_a_url_is_refused_in_one_line(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--aws-endpoint", value])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "is not an endpoint URL such as http://127.0.0.1:5000" in error


def test_an_outside_endpoint_and_moto_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--aws-endpoint", "http://127.0.0.1:5000", "--moto-port", "5001"])
    assert "--aws-endpoint replaces moto" in capsys.readouterr().err


def test_parameter_overrides_name_the_templates_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse_args(["--parameter-overrides", "MappingTtlSeconds=5", "TokenTtlSeconds=60"])
    assert dict(args.parameter_overrides) == {"MappingTtlSeconds": "5", "TokenTtlSeconds": "60"}
    with pytest.raises(SystemExit):
        parse_args(["--parameter-overrides", "NoSuchParameter=1"])
    assert "is not Name=Value for a parameter of template.yaml" in capsys.readouterr().err
