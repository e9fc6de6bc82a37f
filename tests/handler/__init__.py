"""Handler tests: the Lambda handlers, the CLI and the benchmark driven in-process against moto."""
