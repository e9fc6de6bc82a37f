"""The two patterns a Lambda model server is usually written in, as the yardsticks for ours.

Both are deliberately minimal: no authentication, no validation, no security headers, no
logging or metrics. They are what "fast" looks like, not what to deploy.

- *singleton*: the model is loaded once per container into a module global; each request is
  `json.loads` + `predict`. The floor of any real handler.
- *load per request*: the model is fetched from S3 and unpickled on every call. The pattern a
  cache exists to beat (and, unpickling unverified bytes, a security hole of its own).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import boto3
import joblib

# --- singleton ---------------------------------------------------------------------------------

MODEL: Any = None  # set once per container, as `MODEL = joblib.load(...)` at module level would


def init_singleton(model_path: str | os.PathLike[str]) -> None:
    """The container's init phase: load the one model this function serves."""
    global MODEL  # noqa: PLW0603 - the module global *is* the pattern being measured
    MODEL = joblib.load(model_path)


def singleton_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    instances = json.loads(event["body"])["instances"]
    predictions = MODEL.predict(instances).tolist()
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"predictions": predictions}),
        "isBase64Encoded": False,
    }


# --- load per request --------------------------------------------------------------------------

_s3: Any = None


def _s3_client() -> Any:
    global _s3  # noqa: PLW0603 - one client per container, as any sensible handler keeps it
    if _s3 is None:
        _s3 = boto3.client("s3")
    return _s3


def reset_load_per_request() -> None:
    """Forget the S3 client (a new moto context needs a new one)."""
    global _s3  # noqa: PLW0603
    _s3 = None


def load_per_request_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`MODEL_BUCKET` / `PEER_MODEL_KEY` name the object; it is fetched and loaded every call."""
    obj = _s3_client().get_object(Bucket=os.environ["MODEL_BUCKET"], Key=os.environ["PEER_MODEL_KEY"])
    model = joblib.load(io.BytesIO(obj["Body"].read()))
    instances = json.loads(event["body"])["instances"]
    predictions = model.predict(instances).tolist()
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"predictions": predictions}),
        "isBase64Encoded": False,
    }
