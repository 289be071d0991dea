# Two commands for users: `make demo` and `make test`. Everything else is for developers.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
HA_PY := $(VENV)/ha/bin/python
ADDON_PY := $(VENV)/addon/bin/python
# Which Home Assistant `make demo` and `make bench` run: newest (default) or oldest.
HA ?= newest

.PHONY: help bootstrap test lint demo bench fuzz idf-check clean

help:
	@echo "make demo       run the whole system locally (broker, virtual devices, Home Assistant, MCP server)"
	@echo "                HA=oldest runs the oldest supported Home Assistant instead of the newest"
	@echo "make test       run every test suite (firmware, vectors, integration, add-on, end-to-end)"
	@echo "make lint       ruff + mypy --strict"
	@echo "make bench      run the benchmarks (on demand, writes bench/RESULTS.md)"
	@echo "make fuzz       fuzz the firmware's message parsers for FUZZ_SECONDS (default 60)"
	@echo "make idf-check  compile-check the ESP-IDF port against ESP-IDF headers (IDF_PATH etc. set)"

bootstrap:
	@scripts/bootstrap.sh

test: bootstrap
	@scripts/run_tests.sh

lint: bootstrap
	@scripts/lint.sh

demo: bootstrap
	@HA_LANE=$(HA) $(ADDON_PY) -m harness.demo

bench: bootstrap
	@HA_LANE=$(HA) $(ADDON_PY) -m bench

fuzz: bootstrap
	@scripts/fuzz.sh $${FUZZ_SECONDS:-60}

idf-check:
	@firmware/tools/idf_check_port.sh

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
