# duoserve: the two commands are `make run` and `make test`; the rest are their parts.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# /opt/wheels holds the local CPU torch wheel on the development machines.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
export PYTHONPATH := $(CURDIR)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup artifacts converters examples zoo protos test lint run up down frameworks tune clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/:/' | column -t -s:

setup: $(STAMP)  ## create .venv and install the pinned dependencies (idempotent)

$(STAMP): pyproject.toml requirements.lock
	@command -v java >/dev/null || { echo "Java 17 is needed for TorchServe: apt-get install openjdk-17-jre-headless"; exit 1; }
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(FIND_LINKS) -c requirements.lock -e '.[dev]'
	@# onnx2torch without torchvision: PyPI's torchvision does not load beside the CPU torch
	$(PY) -m pip install -q --no-deps -c requirements.lock onnx2torch
	@# tritonclient (the tests' Open Inference Protocol clients) without its protobuf<7 and ml-dtypes pins
	$(PY) -m pip install -q --no-deps -c requirements.lock tritonclient
	@# Triton Inference Server (services/triton_api): only the tritonserver binary, its python backend and stubs
	@# of PyPI's nvidia-pytriton wheel (55 MB) are used; its own Python code, and its numpy<2 pin, are not
	$(PY) -m pip install -q --no-deps -c requirements.lock nvidia-pytriton
	touch $(STAMP)

artifacts: $(STAMP)  ## build weights, TorchScript, ONNX, .mar and SavedModels (only what is stale)
	$(PY) -m stack.build

converters: $(STAMP)  ## create the onnx2tf converter venv (.venv-onnx2tf) that `duoserve models add` uses
	$(PY) -c 'from stack.models.converters import onnx2tf_command; print(onnx2tf_command())'

examples: $(STAMP)  ## build the four examples in examples/ and add them with `duoserve models add` (once per recipe)
	$(PY) -m examples add

zoo: $(STAMP)  ## the model zoo: build, add (artifacts/zoo/), serve on every backend, check, table in docs/models.md (NAMES=...)
	$(PY) -m examples zoo $(NAMES)

protos: $(STAMP)  ## regenerate the gateway's protobuf modules from gateway/protos/*.proto (committed; grpcio-tools)
	$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. gateway/protos/oip_v2.proto gateway/protos/tf_serving.proto

test: artifacts  ## set up, build artifacts, run the whole test suite
	$(PY) -m pytest

lint: $(STAMP)  ## ruff, mypy, and the layering contracts (import-linter, pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# `make run`: the stack comes down again whatever happens (failure, Ctrl-C). MODEL=name picks the model;
# TUNED=file starts the stack with a tuned configuration (`python -m loadtests tune`).
RUN_ARGS ?=
MODEL ?=
TUNED ?=
UP_ARGS := $(if $(TUNED),--tuned $(TUNED),)
ifneq ($(MODEL),)
override RUN_ARGS += --model $(MODEL)
endif
run: artifacts  ## start the stack natively, run the default comparison, write reports/<time>/, stop
	@trap '$(PY) -m stack down' EXIT; trap 'exit 130' INT TERM; \
	$(PY) -m stack up $(UP_ARGS) && \
	$(PY) -m loadtests run --profile default --out reports $(RUN_ARGS)

# `make frameworks ARGS=--quick`: the frameworks themselves, in process (docs/frameworks.md)
ARGS ?=
frameworks: artifacts  ## training and in-process inference speed of both frameworks; writes reports/frameworks-<time>/
	$(PY) -m benchmarks.frameworks --out reports $(ARGS)

# `make tune MODEL=digits`: search every stack's serving settings (about 10 min); writes reports/tune-<time>/tuned.json
tune: artifacts  ## search TorchServe's, Triton's and the TF server's serving settings against the SLO (bounded; MODEL=name)
	$(PY) -m loadtests tune --model $(or $(MODEL),digits) --out reports

up: artifacts  ## start torch_api, triton_api, tf_api and the gateway in the background (TUNED=file: a tuned configuration)
	$(PY) -m stack up $(UP_ARGS)

down:  ## stop everything `make up` started
	$(PY) -m stack down

clean:  ## stop the stack; remove generated artifacts, reports, logs and run state (keeps .venv)
	-test -x $(PY) && $(PY) -m stack down
	rm -rf artifacts reports logs .run
