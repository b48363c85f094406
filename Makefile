# The two commands README.md promises: `make run` and `make test`. Both set up everything.

# Lambda runs Python 3.12: the first 3.12 found on PATH or in pyenv (or LAMBDA_PYTHON=...).
LAMBDA_PYTHON ?= $(firstword $(foreach p,$(shell command -v python3.12) \
                   $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12),\
                   $(shell $(p) -c 'import sys; print(sys.version_info[:2] == (3, 12) and "$(p)" or "")' 2>/dev/null)))
# The virtual environment (and so the tests) uses Lambda's Python when there is one, else any
# Python 3.11+. A .venv built by another Python is rebuilt.
PYTHON ?= $(or $(LAMBDA_PYTHON),python3)
PYVER  := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV   := .venv
BIN    := $(VENV)/bin
# Two layers in one virtual environment: what running needs (`make run`), then the test and
# build toolchain on top (`make test`, lint, typecheck, bench).
RUN_STAMP := $(VENV)/.run-$(PYVER)
DEV_STAMP := $(VENV)/.dev-$(PYVER)
PIP := $(BIN)/python -m pip install --disable-pip-version-check

# Optional parts, each a requirements-<name>.txt: `make artifact EXTRAS=redis,xray` adds them to
# the zip, `make run EXTRAS=redis` to the local environment. `make test` always has them all.
comma  := ,
space  := $(subst ,, )
EXTRAS ?=
EXTRA_NAMES := $(sort $(subst $(comma), ,$(EXTRAS)))
EXTRA_FILES := $(foreach e,$(EXTRA_NAMES),requirements-$(e).txt)
$(foreach f,$(EXTRA_FILES),$(if $(wildcard $(f)),,$(error EXTRAS: there is no $(f); the optional parts are: $(patsubst requirements-%.txt,%,$(filter-out requirements-run.txt requirements-dev.txt,$(wildcard requirements-*.txt))))))

# Deployment package: Lambda runs Python 3.12 on arm64 (serverless.yml), so dependencies are
# fetched as manylinux2014_aarch64 cp312 wheels whatever this machine is.
BUILD    := build
ARTIFACT := $(BUILD)/gme-autorecord.zip
SMOKE    := $(BUILD)/smoke
# Wheels for Lambda's Python 3.12 on a given platform, whatever this machine runs.
FOR_PY312 := --implementation cp --python-version 3.12 --only-binary=:all: --no-compile
# Lambda cannot write /var/task, so whatever the zip lacks in bytecode is compiled again on every
# cold start (measured: the webhook's import takes 2.2x as long from sources alone). The zip
# therefore carries bytecode from LAMBDA_PYTHON (its .pyc format is Lambda's), hash-checked
# never: the artifact is immutable, and zip timestamps would make mtime checks misfire.
# Packaging runs offline: fake credentials, no telemetry, and HOME inside build/ so the framework's
# caches (~/.serverless) never land in the real home directory.
OSLS := HOME=$(CURDIR)/$(BUILD)/home SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off \
        AWS_ACCESS_KEY_ID=offline-packaging AWS_SECRET_ACCESS_KEY=offline-packaging \
        AWS_SESSION_TOKEN= AWS_PROFILE= AWS_REGION=eu-west-1 NPM_CONFIG_UPDATE_NOTIFIER=false npx --no-install osls
STAGE  ?= dev
REGION ?= eu-west-1

.PHONY: run test lint typecheck unit bench mutation install clean artifact package deploy node-tools services smoke

$(RUN_STAMP): requirements.txt requirements-run.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
	    echo "$(VENV) was built by another Python: rebuilding it with $(PYTHON) ($(PYVER))"; rm -rf $(VENV); \
	fi
	@echo "==> $(VENV): installing what running needs (requirements-run.txt; once, about 30 s)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-run.txt
	@touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt $(wildcard requirements-*.txt)
	@echo "==> $(VENV): adding the test and build tools (requirements-dev.txt; once)"
	$(PIP) --quiet -r requirements-dev.txt
	@touch $(DEV_STAMP)

install: $(RUN_STAMP)

run: $(RUN_STAMP)
	@$(if $(EXTRA_FILES),$(PIP) --quiet $(addprefix -r ,$(EXTRA_FILES)))
	$(BIN)/python -m handler run

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# Real services the integration tests start themselves (moto_server comes from requirements-dev).
services:
	@command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)

# Lint, typecheck, package + cfn-lint (skipped without node/npm), then every test.
test: lint typecheck services package smoke
	LAMBDA_PYTHON="$(LAMBDA_PYTHON)" $(BIN)/python -m pytest

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

# Mutation testing of the core modules (docs/testing.md); not in CI: it takes tens of minutes.
# MUTATE=handler/service_layer/recorder.py limits it to some modules.
mutation: $(DEV_STAMP)
	$(BIN)/python -m tests.mutation $(MUTATE)

# Runtime dependencies for Lambda, made lean by build_tools/slim.py. boto3/botocore/s3transfer
# come with the Lambda runtime (they arrive here only as aws-xray-sdk's dependency, with dateutil
# and six), so they are removed. With a Python 3.12 the dependencies ship as bytecode alone.
# $(call lambda_deps,FOLDER,PLATFORM)
define lambda_deps
	rm -rf $(1)
	$(PIP) --quiet --target $(1) --platform $(2) $(FOR_PY312) -r requirements.txt $(addprefix -r ,$(EXTRA_FILES))
	$(BIN)/python build_tools/slim.py prune $(1)
	rm -rf $(1)/bin $(1)/boto3 $(1)/boto3-* $(1)/botocore $(1)/botocore-* \
	    $(1)/s3transfer $(1)/s3transfer-* $(1)/dateutil $(1)/python_dateutil-* $(1)/six.py $(1)/six-*
	$(if $(LAMBDA_PYTHON),$(LAMBDA_PYTHON) build_tools/slim.py sourceless $(1))
endef

# One folder per set of extras, so switching EXTRAS never ships a stale set.
DEPS := $(BUILD)/deps$(if $(EXTRA_NAMES),-$(subst $(space),-,$(EXTRA_NAMES)))
$(DEPS)/.installed: requirements.txt $(EXTRA_FILES) build_tools/slim.py | $(DEV_STAMP)
	$(call lambda_deps,$(DEPS),manylinux2014_aarch64)
	@touch $@

# The same dependencies for this machine's CPU, and apart from them the boto3 that the Lambda
# runtime brings: tests/deploy/test_artifact_runs.py runs the zip's handler/ with exactly these,
# under Python 3.12, so a module missing from requirements.txt fails there, not in Lambda.
# Linux only (the wheels are manylinux; a Mac skips it, and the test says so).
HOST_PLATFORM := manylinux2014_$(shell uname -m | sed 's/^arm64$$/aarch64/')
$(SMOKE)/.installed: requirements.txt requirements-run.txt build_tools/slim.py | $(DEV_STAMP)
	$(call lambda_deps,$(SMOKE)/deps,$(HOST_PLATFORM))
	rm -rf $(SMOKE)/runtime
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --target $(SMOKE)/runtime \
	    --platform $(HOST_PLATFORM) $(FOR_PY312) $(shell grep -E '^boto3==' requirements-run.txt)
	@touch $@

ifeq ($(shell uname -s),Linux)
smoke: $(SMOKE)/.installed
else
smoke:
	@echo "SKIPPED: make smoke builds Linux wheels; tests/deploy/test_artifact_runs.py will skip"
endif

# The command line and the local stack (handler/tools/, and the `python -m handler` shim), which
# Lambda never imports (tests/unit/test_layers.py: nothing else imports the tools).
LOCAL_ONLY := tools __main__.py

# The zip Lambda runs: dependencies + handler/ + policies/, without the local runner, tests,
# emulator, bench, events or caches. Rebuilt every time (a second or two). Its optional parts
# (EXTRAS) are written beside it, for tests/deploy.
artifact: $(DEPS)/.installed
	rm -rf $(BUILD)/lambda $(ARTIFACT)
	mkdir -p $(BUILD)/lambda
	cp -R $(DEPS)/. $(BUILD)/lambda/
	rm -f $(BUILD)/lambda/.installed
	cp -R handler policies $(BUILD)/lambda/
	rm -rf $(addprefix $(BUILD)/lambda/handler/,$(LOCAL_ONLY))
	find $(BUILD)/lambda/handler -name __pycache__ -type d -prune -exec rm -rf {} +
	@if [ -n "$(LAMBDA_PYTHON)" ]; then \
	    echo "compiling bytecode with $(LAMBDA_PYTHON)"; \
	    $(LAMBDA_PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(BUILD)/lambda/handler >/dev/null; \
	else \
	    echo "WARNING: no Python 3.12 found (set LAMBDA_PYTHON): the zip ships sources only, and"; \
	    echo "         every cold start compiles them again"; \
	fi
	$(BIN)/python build_tools/slim.py zip $(BUILD)/lambda $(ARTIFACT)
	@echo "$(EXTRA_NAMES)" > $(ARTIFACT:.zip=.extras)
	@ls -l $(ARTIFACT)
	@echo "optional parts: $(or $(EXTRA_NAMES),none)"

# osls (open-source Serverless Framework v3 line), pinned in package-lock.json.
node_modules/.installed: package.json package-lock.json
	NPM_CONFIG_UPDATE_NOTIFIER=false npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

node-tools: node_modules/.installed

# Generate the CloudFormation template offline and lint it (.cfnlintrc.yaml names the ignores).
package: artifact
	@if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then \
	    echo "SKIPPED: package + cfn-lint need node and npm (Node.js 18+); tests/deploy will skip too"; \
	else \
	    $(MAKE) --no-print-directory node-tools && \
	    rm -rf .serverless && $(OSLS) package --stage $(STAGE) --region $(REGION) && \
	    $(BIN)/cfn-lint; \
	fi

# Real deployment (needs AWS credentials in the environment): make deploy STAGE=prod REGION=...
deploy: artifact node-tools
	SLS_TELEMETRY_DISABLED=1 npx --no-install osls deploy --stage $(STAGE) --region $(REGION)

clean:
	rm -rf $(VENV) .local $(BUILD) .serverless node_modules
