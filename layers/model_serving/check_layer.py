"""Run by the layer's Makefile after trimming: the layer alone imports and serves an ONNX model.

Run with `python -S` and PYTHONPATH set to the built layer only, so nothing is borrowed from a
venv. `iris.onnx` is the demo model A as registration serves it (the ONNX conversion of
`models/model_user_a.pkl`); it is a build check only and not shipped in the layer.
"""

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
model = (Path(__file__).parent / "iris.onnx").read_bytes()
session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
labels, probabilities = session.run(None, {session.get_inputs()[0].name: rows})
if labels.tolist() != [0, 2] or probabilities.shape != (2, 3):
    sys.exit(f"layer check failed: labels {labels.tolist()}, probabilities {probabilities.shape}")
print(f"ONNX layer check: onnxruntime {ort.__version__}, numpy {np.__version__}: ok")
