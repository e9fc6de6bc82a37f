"""What a tenant's ONNX graph may hold: no external data anywhere, and only allowed operators.

A served graph is data the tenant chose, and ONNX Runtime does what it says. Two rules decide
what it may say (docs/hostile-models.md, docs/decisions/0006-hostile-models.md):

1. **No external data, found by one generic walk.** `tensors` visits every message of the
   `ModelProto` through protobuf's own field descriptors, so a tensor in a place this code does
   not name (a sparse attribute, a sparse initializer of a subgraph, a tensor list in a branch
   body, a function, training info, a field a future ONNX adds) is visited all the same. A
   tensor whose bytes live in a file (`data_location: EXTERNAL` or any `external_data` entry)
   would make ONNX Runtime read that file and hand its bytes back as predictions.
2. **Operators from one table.** `OPERATORS` lists, per converter, the operators its output
   uses for the supported families (derived by converting the model zoo of
   `tests/unit/test_onnx_graph.py`, one test per family). No operator whose output size or run
   time comes from input values is listed without a rule: the operators of `SIZE_INPUTS`
   (`ConstantOfShape`, `Expand`, `Tile`, `Range`, `Loop`'s trip count, ...) are admitted only
   when their size arguments are constants of the graph, and `Loop`, `If` and `Resize` are not
   listed at all. `Scan` (k-NN) iterates over the request's rows, whose count max_batch bounds.
   What constants and shapes can still cost is bounded by the run budget: registration runs the
   graph on extreme rows under it (`registry/run_probe.py`), and predict cuts off every run at it
   (`model_serving/run_budget.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

# (domain, op_type) by the converter that emits them: "" is the default domain (ai.onnx).
_ML: Final = "ai.onnx.ml"
OPERATORS: Final[dict[str, frozenset[tuple[str, str]]]] = {
    # skl2onnx 1.20, zipmap disabled, float or double input: linear models, SVMs (with and without
    # probabilities), k-NN, MLP, naive Bayes, decision trees, random forests, extra trees,
    # gradient boosting (HistGradientBoosting: skl2onnx 1.20 fails to convert it), bagging, and
    # pipelines with imputers and scalers; classifiers and regressors, binary and multiclass,
    # int and string labels (tests/unit/test_onnx_graph.py::ZOO, a test per family).
    "skl2onnx": frozenset(
        {
            *(
                (_ML, op)
                for op in (
                    "ArrayFeatureExtractor",
                    "Imputer",
                    "LinearClassifier",
                    "LinearRegressor",
                    "Normalizer",
                    "SVMClassifier",
                    "SVMRegressor",
                    "Scaler",
                    "TreeEnsembleClassifier",
                    "TreeEnsembleRegressor",
                )
            ),
            *(
                ("", op)
                for op in (
                    "Abs",
                    "Add",
                    "ArgMax",
                    "Cast",
                    "Concat",
                    "Div",
                    "Equal",
                    "Exp",
                    "Flatten",
                    "Greater",
                    "Identity",
                    "Less",
                    "Log",
                    "MatMul",
                    "Max",
                    "Mul",
                    "Neg",
                    "Not",
                    "Pow",
                    "Reciprocal",
                    "ReduceLogSumExp",
                    "ReduceMean",
                    "ReduceSum",
                    "ReduceSumSquare",
                    "Relu",
                    "Reshape",
                    # k-NN's distances: one iteration per row of the request (max_batch bounds
                    # it), never a count read from values; its body is checked like any graph.
                    "Scan",
                    "Sigmoid",
                    "Softmax",
                    "Sqrt",
                    "Sub",
                    "Sum",
                    "Tanh",
                    "TopK",
                    "Transpose",
                )
            ),
        }
    ),
    # onnxmltools (XGBoost, LightGBM): its row goes here, with a test per family beside the zoo.
}
ALLOWED_OPERATORS: Final = frozenset().union(*OPERATORS.values())

# Operators whose output size is read from input values: these inputs (by position) must be
# constants of the graph (an initializer that no caller can feed, or a Constant node's output).
SIZE_INPUTS: Final[dict[tuple[str, str], tuple[int, ...]]] = {
    ("", "ConstantOfShape"): (0,),
    ("", "Expand"): (1,),
    ("", "Tile"): (1,),
    ("", "Range"): (0, 1, 2),
    ("", "OneHot"): (1,),
    ("", "Pad"): (1,),
    ("", "Resize"): (1, 2, 3),
    ("", "Upsample"): (1,),
    ("", "Loop"): (0,),
}


class GraphRefused(Exception):
    """The graph is refused; the message is one line meant for the operator."""


def tensors(message: Any) -> Iterator[Any]:
    """Every `TensorProto` held anywhere in `message`, at any depth, through every message field
    that is set (protobuf's `ListFields`), sparse tensors' values and indices included."""
    pending = [message]
    while pending:  # a stack, not recursion: nesting depth is the file's to choose
        current = pending.pop()
        if current.DESCRIPTOR.full_name == "onnx.TensorProto":
            yield current
        for field, value in current.ListFields():
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                values = value.values()
                if field.message_type.fields_by_name["value"].message_type is not None:
                    pending.extend(values)
            elif hasattr(value, "ListFields"):  # one message (a repeated field has no fields)
                pending.append(value)
            else:  # a repeated field of messages
                pending.extend(value)


def refuse_external_data(model: Any) -> None:
    """`GraphRefused` if any tensor of the model keeps its bytes outside the file."""
    external = 2  # onnx.TensorProto.EXTERNAL, without importing onnx here
    for tensor in tensors(model):
        if tensor.data_location == external or len(tensor.external_data):
            raise GraphRefused("the ONNX model refers to external data (a file beside it); embed its tensors")


def graphs(model: Any) -> Iterator[tuple[Any, frozenset[str]]]:
    """Every graph of the model (main graph, subgraphs at any depth, functions' bodies as one
    graph each, training info's graphs), with the names that are constants where it runs."""
    pending: list[tuple[Any, frozenset[str]]] = [(model.graph, frozenset())]
    for function in model.functions:
        pending.append((function, frozenset()))
    for info in model.training_info:
        pending.extend(
            (graph, frozenset())
            for graph in (info.initialization, info.algorithm)
            if len(graph.node) or len(graph.initializer)
        )
    while pending:
        graph, outer = pending.pop()
        constants = _constants(graph, outer)
        yield graph, constants
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    pending.append((attribute.g, constants))
                pending.extend((sub, constants) for sub in attribute.graphs)


def _constants(graph: Any, outer: frozenset[str]) -> frozenset[str]:
    """Names whose values are fixed in the file where `graph` runs: initializers that are not
    also inputs (an input of the same name would let a caller override one), Constant nodes'
    outputs, and the enclosing graph's constants that this graph does not redefine."""
    fed = {value if isinstance(value, str) else value.name for value in graph.input}
    fed |= {output for node in graph.node for output in node.output}
    names = set(outer - fed)
    names |= {tensor.name for tensor in getattr(graph, "initializer", ()) if tensor.name not in fed}
    names |= {sparse.values.name for sparse in getattr(graph, "sparse_initializer", ())}
    names |= {
        output
        for node in graph.node
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx")
        for output in node.output
    }
    return frozenset(names)


def refuse_operators(model: Any, allowed: frozenset[tuple[str, str]] = ALLOWED_OPERATORS) -> None:
    """`GraphRefused` naming the first operator outside `allowed`, or an operator of
    `SIZE_INPUTS` whose size argument is computed rather than constant."""
    for graph, constants in graphs(model):
        for node in graph.node:
            key = ("" if node.domain == "ai.onnx" else node.domain, node.op_type)
            name = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
            if key not in allowed:
                raise GraphRefused(
                    f"the ONNX operator {name} is not served: the graph must be a converted estimator "
                    f"(scikit-learn through skl2onnx)"
                )
            for position in SIZE_INPUTS.get(key, ()):
                if position < len(node.input) and node.input[position] not in constants:
                    raise GraphRefused(
                        f"the ONNX operator {name} takes its size from the input's values: the graph "
                        f"must be a converted estimator (scikit-learn through skl2onnx)"
                    )


def check_graph(model: Any) -> None:
    """Both rules, on a parsed `onnx.ModelProto`, before anything else reads the graph."""
    refuse_external_data(model)
    refuse_operators(model)
