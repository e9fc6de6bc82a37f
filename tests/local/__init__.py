"""Local-stack tests, black-box: `python -m local.serve` in a subprocess, spoken to over HTTP."""
