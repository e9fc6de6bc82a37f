"""Graphs a hostile (or merely unlucky) tenant could register, for the unit, handler and attack
suites (registry/onnx_graph.py, registry/run_probe.py, model_serving/run_budget.py):

- `PLACES`: one tensor with external data in each place a tensor can live in a ModelProto;
- `loop_from_input`, `constant_of_shape`: sizes computed from the request's values;
- `slow_graph`, `odd_batch_failing_graph`: every operator one skl2onnx emits, so the allowlist
  admits them, yet slow on a full batch, or failed by ONNX Runtime on some requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
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
    main = helper.make_graph(
        [*nodes, classify],
        "hostile",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, FEATURES])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(CLASSES)]),
        ],
        initializer=initializers,
    )
    classifier = helper.make_model(
        main,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)],
        ir_version=8,
    )
    return bytes(classifier.SerializeToString())


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


# --- external data, anywhere -----------------------------------------------------------------


def external(name: str = "stolen", location: str = "secret.bin", n: int = 4) -> TensorProto:
    """A float tensor whose bytes ONNX Runtime would read from `location`."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[n])
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return tensor


def embedded(name: str, values: list[float]) -> TensorProto:
    return helper.make_tensor(name, TensorProto.FLOAT, [len(values)], values)


def sparse(values: TensorProto, n: int = 4) -> onnx.SparseTensorProto:
    indices = helper.make_tensor(f"{values.name}_i", TensorProto.INT64, [n], list(range(n)))
    return helper.make_sparse_tensor(values, indices, [n])


def graph(nodes: list[onnx.NodeProto], name: str = "g", **kwargs: Any) -> onnx.GraphProto:
    return helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 4])],
        **kwargs,
    )


def model(main: onnx.GraphProto, **kwargs: Any) -> onnx.ModelProto:
    return helper.make_model(
        main,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
        ir_version=8,
        **kwargs,
    )


def add(constant: str = "W") -> onnx.NodeProto:
    return helper.make_node("Add", ["X", constant], ["Y"])


def if_node(then: onnx.GraphProto, otherwise: onnx.GraphProto | None = None) -> onnx.NodeProto:
    return helper.make_node("If", ["cond"], ["Y"], then_branch=then, else_branch=otherwise or then)


def branch(nodes: list[onnx.NodeProto], **kwargs: Any) -> onnx.GraphProto:
    return helper.make_graph(
        nodes, "branch", [], [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 4])], **kwargs
    )


# Every place a tensor can live in a ModelProto, each holding one tensor with external data.
PLACES: dict[str, Callable[[], onnx.ModelProto]] = {
    "initializer": lambda: model(graph([add()], initializer=[external("W")])),
    "sparse initializer values": lambda: model(graph([add()], sparse_initializer=[sparse(external("W"))])),
    "sparse initializer indices": lambda: model(
        graph(
            [add()],
            sparse_initializer=[
                helper.make_sparse_tensor(embedded("W", [1.0] * 4), external("W_i", n=4), [4])
            ],
        )
    ),
    "tensor attribute": lambda: model(
        graph([helper.make_node("Constant", [], ["W"], value=external()), add()])
    ),
    "sparse tensor attribute": lambda: model(
        graph([helper.make_node("Constant", [], ["W"], sparse_value=sparse(external())), add()])
    ),
    "tensor list attribute": lambda: model(
        graph(
            [
                helper.make_node("Identity", [], ["W"], tensors=[embedded("a", [1.0]), external()]),
                add(),
            ]
        )
    ),
    "sparse tensor list attribute": lambda: model(
        graph([helper.make_node("Identity", [], ["W"], sparse_tensors=[sparse(external())]), add()])
    ),
    "sparse initializer of a subgraph": lambda: model(
        graph([if_node(branch([add()], sparse_initializer=[sparse(external("W"))]))])
    ),
    "tensor list attribute in a branch body": lambda: model(
        graph(
            [
                if_node(
                    branch([helper.make_node("Identity", [], ["Y"], tensors=[external()])]),
                    branch([helper.make_node("Identity", ["X"], ["Y"])]),
                )
            ]
        )
    ),
    "initializer of a subgraph two levels down": lambda: model(
        graph([if_node(branch([if_node(branch([add()], initializer=[external("W")]))]))])
    ),
    "graph list attribute": lambda: model(
        graph(
            [
                helper.make_node(
                    "Custom", [], ["Y"], domain="x", graphs=[branch([add()], initializer=[external("W")])]
                )
            ]
        )
    ),
    "function body": lambda: model(
        graph([helper.make_node("Fn", ["X"], ["Y"], domain="local")]),
        functions=[
            helper.make_function(
                "local",
                "Fn",
                ["X"],
                ["Y"],
                [helper.make_node("Constant", [], ["W"], sparse_value=sparse(external())), add()],
                [helper.make_opsetid("", 17)],
            )
        ],
    ),
    "training info initialization": lambda: training(initialization=True),
    "training info algorithm": lambda: training(initialization=False),
}


def training(*, initialization: bool) -> onnx.ModelProto:
    served = model(graph([add()], initializer=[embedded("W", [1.0] * 4)]))
    info = served.training_info.add()
    target = info.initialization if initialization else info.algorithm
    target.CopyFrom(branch([helper.make_node("Identity", ["W"], ["Y"])], initializer=[external("W")]))
    return served


def loop_from_input() -> onnx.ModelProto:
    """A Loop whose trip count is computed from the request's values: Cast(ReduceSum(X)) (the
    review's used ReduceMax, which is not served at all)."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["v"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v", TensorProto.FLOAT, [None, 4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [None, 4]),
        ],
    )
    nodes = [
        helper.make_node("ReduceSum", ["X"], ["m"], keepdims=0),
        helper.make_node("Cast", ["m"], ["trips"], to=TensorProto.INT64),
        helper.make_node("Loop", ["trips", "yes", "X"], ["Y"], body=body),
    ]
    yes = helper.make_tensor("yes", TensorProto.BOOL, [], [True])
    return model(graph(nodes, initializer=[yes]))


def constant_of_shape(shape_from_input: bool) -> onnx.ModelProto:
    """ConstantOfShape whose shape is ReduceSum(Cast(X)) (from the values) or an initializer."""
    if shape_from_input:
        nodes = [
            helper.make_node("Cast", ["X"], ["xs"], to=TensorProto.INT64),
            helper.make_node("ReduceSum", ["xs"], ["n"], keepdims=1),
            helper.make_node("Reshape", ["n", "one"], ["shape"]),
            helper.make_node("ConstantOfShape", ["shape"], ["Y"]),
        ]
        init = [helper.make_tensor("one", TensorProto.INT64, [1], [1])]
    else:
        nodes = [helper.make_node("ConstantOfShape", ["shape"], ["Y"])]
        init = [helper.make_tensor("shape", TensorProto.INT64, [2], [1, 4])]
    return model(graph(nodes, initializer=init))
