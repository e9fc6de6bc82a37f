"""Predict's model serving (the ML part, shipped in predict's own layer with numpy and ONNX
Runtime; login and the authorizer never get it): one module per concern.

- `payload`: strict parsing and validation of prediction requests, before any model is touched.
- `models`: integrity-pinned model loading, the warm-container cache, and predict's state
  (`PredictRuntime`, the core's `Runtime` plus the model cache).
- `sklearn_models`: audited skops estimators (where the scikit-learn layer is attached).
"""
