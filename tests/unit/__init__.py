"""Unit tests: pure functions, the template, docs and generated files; no moto, no stack."""
