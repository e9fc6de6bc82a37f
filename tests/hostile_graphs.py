"""Graphs a hostile (or merely unlucky) tenant could register that the operator allowlist admits:
every operator in them is one skl2onnx emits, yet they are slow, or fail inside ONNX Runtime on
some requests. Plain builders for the handler and attack suites (registry/onnx_graph.py,
model_serving/run_budget.py)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

FEATURES = 4
CLASSES = [0, 1, 2]


def _classifier(nodes: list[object], last: str, initializers: list[TensorProto]) -> bytes:
    """`nodes` ending in `last` [N, 4], then a LinearClassifier naming three int classes."""
    classify = helper.make_node(
        "LinearClassifier",
        [last],
        ["label", "probabilities"],
        domain="ai.onnx.ml",
        coefficients=[1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 1.0, 0],
        intercepts=[0.0, 0.0, 0.0],
        classlabels_ints=CLASSES,
        post_transform="SOFTMAX",
    )
    graph = helper.make_graph(
        [*nodes, classify],
        "hostile",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, FEATURES])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(CLASSES)]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)],
        ir_version=8,
    )
    return bytes(model.SerializeToString())


def slow_graph(layers: int = 40, width: int = 256) -> bytes:
    """`layers` MatMuls of [N, width] by [width, width] (65 536 multiply-adds a row and layer): a
    batch of 1 000 rows took 220-290 ms here, one row 0.25-0.5 ms. It computes the identity."""
    widen = np.zeros((FEATURES, width), dtype=np.float32)
    widen[:, :FEATURES] = np.eye(FEATURES)
    narrow = np.ascontiguousarray(widen.T)
    initializers = [
        numpy_helper.from_array(widen, "widen"),
        numpy_helper.from_array(np.eye(width, dtype=np.float32), "square"),
        numpy_helper.from_array(narrow, "narrow"),
    ]
    nodes = [helper.make_node("MatMul", ["X", "widen"], ["h0"])]
    for i in range(layers):
        nodes.append(helper.make_node("MatMul", [f"h{i}", "square"], [f"h{i + 1}"]))
    nodes.append(helper.make_node("MatMul", [f"h{layers}", "narrow"], ["out"]))
    return _classifier(nodes, "out", initializers)


def odd_batch_failing_graph() -> bytes:
    """Reshapes [N, 4] to [-1, 8] and back: ONNX Runtime fails the run when N is odd. Registration
    runs only even batches (8, 512 and 1 000 rows), so it registers."""
    shapes = [
        helper.make_tensor("pairs", TensorProto.INT64, [2], [-1, 2 * FEATURES]),
        helper.make_tensor("rows", TensorProto.INT64, [2], [-1, FEATURES]),
    ]
    nodes = [
        helper.make_node("Reshape", ["X", "pairs"], ["paired"]),
        helper.make_node("Reshape", ["paired", "rows"], ["out"]),
    ]
    return _classifier(nodes, "out", shapes)
