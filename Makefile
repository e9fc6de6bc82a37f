# Two commands a newcomer needs: `make serve` (the service, locally, on moto) and `make test`.
# Each creates .venv with Python 3.12 (the Lambda runtime's version), installs the lock, then the
# project itself (pyproject.toml, editable, without resolving dependencies: the lock decides them).

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt | sha256sum | cut -c1-12)
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cat requirements-checkov.txt | sha256sum | cut -c1-12)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: venv serve check test tests test-unit test-handler test-local test-attack lint typecheck template-lint \
  bench build clean sam-local test-sam-local fault-drill

venv: $(STAMP)

$(STAMP): requirements-dev.txt pyproject.toml
	@python312="$$(scripts/python312)" && \
	  { [ -x $(BIN)/python ] && $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
	    || { rm -rf $(VENV) && "$$python312" -m venv $(VENV); }; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

# LOCAL_AWS_ENDPOINT=URL make serve: against an AWS-compatible endpoint already running (moto_server).
serve: venv
	$(BIN)/python -m local.serve

# moto stalled, killed, DynamoDB throttled, S3 SlowDown under the local stack; a few minutes; every
# answer checked against the contract (docs/fault-drill.md). Not part of `make test`.
fault-drill: venv
	$(BIN)/python -m local.fault_drill

test: lint typecheck template-lint tests

# The inner loop (under a minute with a warm venv): lint, types, and the unit tests.
check: lint typecheck test-unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# checkov over both tenant isolation modes: the template (per-tenant by default) and its shared
# rendering. `sam validate --lint` and cfn-lint of both renderings run in the test suite
# (tests/unit/test_template_isolation.py), in parallel with the other tests: here they added
# 14 s of serial time to `make test` twice over.
template-lint: venv $(CHECKOV_STAMP)
	$(BIN)/python scripts/render_isolation_mode.py shared .local/template.shared.yaml
	for t in template.yaml .local/template.shared.yaml; do \
	  $(CHECKOV_VENV)/bin/checkov --file $$t --framework cloudformation --skip-download --compact --quiet \
	  || exit 1; done

# checkov pins an older boto3 than aws-sam-cli: it gets a venv of its own.
$(CHECKOV_STAMP): requirements-checkov.txt
	@python312="$$(scripts/python312)" && rm -rf $(CHECKOV_VENV) && "$$python312" -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# Tests by kind (docs/testing.md), each runnable alone; `make tests` runs them all in one pytest run
# (one collection, one start of the attack suite's stack) with the coverage report and its floor.
# pytest exits 5 when it collects no test: that is not a failure of the code under test.
pytest = $(BIN)/pytest $(1) $(PYTEST_ARGS) \
  || { rc=$$?; [ $$rc -eq 5 ] && echo "pytest: no tests collected" || exit $$rc; }
# In-process coverage of the code that ships or operates (the local stack's subprocesses are not
# measured); the floor is a few points under the measured figure (docs/testing.md).
COVERAGE_FLOOR := 76
COVERAGE := --cov --cov-report=term-missing:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)
# pytest-xdist: one worker per CPU; the tests that share a started local stack stay on one worker
# (tests/conftest.py groups them), so each stack still starts once. `XDIST=` runs in one process.
XDIST ?= -n auto --dist loadgroup

tests: venv
	$(call pytest,$(COVERAGE) $(XDIST) tests)

# Pure functions, the template, the docs and generated files: no moto, no stack.
test-unit: venv
	$(call pytest,tests/unit)

# The Lambda handlers, the CLI and the benchmark driven in-process with events against moto.
test-handler: venv
	$(call pytest,$(XDIST) tests/handler)

# Black-box: `python -m local.serve` started on loopback ports and spoken to over HTTP.
test-local: venv
	$(call pytest,tests/local)

# The attack suite, against the local stack it starts (`make smoke URL=...` for a deployment).
test-attack: venv
	$(call pytest,tests/attack)

# `sam build` without Docker: the real Python 3.12 must come first on PATH.
build: venv
	PATH="$$(dirname "$$(scripts/python312)"):$$PATH" $(BIN)/sam build --template template.yaml

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Deploy to the AWS account of the current credentials (docs/deploy.md): `sam build`, then
# `sam deploy` with samconfig.toml's safe defaults; guided (stack name, region, parameters, saved
# in samconfig.toml) until a stack name is saved there. Then `make smoke URL=<ApiUrl output>`.
.PHONY: deploy
deploy: build
	@if grep -q '^stack_name' samconfig.toml; then $(BIN)/sam deploy; else $(BIN)/sam deploy --guided; fi

# The black-box attack suite against a deployed stack (without URL, `pytest tests/attack` runs it
# against the local stack instead). Users of two different tenants:
#   SMOKE_USERNAME=... SMOKE_PASSWORD=... SMOKE_USERNAME_2=... SMOKE_PASSWORD_2=... \
#   make smoke URL=https://<api-id>.execute-api.<region>.amazonaws.com/<stage>
.PHONY: smoke
smoke: venv
	@[ -n "$(URL)" ] || { echo "usage: make smoke URL=https://<api-id>.execute-api.<region>.amazonaws.com/<stage>" >&2; exit 2; }
	SMOKE_URL="$(URL)" $(BIN)/pytest tests/attack $(PYTEST_ARGS)

# The functions in Lambda-style Docker containers behind `sam local start-api`, against the local
# stack's moto server (docs/local-and-docker.md). `scripts/docker-engine up` uses a running Docker
# engine, or installs (apt-get, as root) and starts one, and says why when it cannot; `down` stops
# only a dockerd that `up` started. PORT=3000 by default; SAM_LOCAL_IMAGE=auto|official|emulation.
sam-local: venv
	@trap 'scripts/docker-engine down' EXIT; \
	  scripts/docker-engine up && $(BIN)/python -m local.sam_local serve

# The README walkthrough, the attack suite's core and one `sam local invoke` per function, against
# `sam local start-api`; never pulls an image (the official one is used only if already here).
test-sam-local: venv
	@trap 'scripts/docker-engine down' EXIT; \
	  scripts/docker-engine up && $(BIN)/python -m local.sam_local test --no-pull
