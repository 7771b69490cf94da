# Every target installs what it needs first (tools/setup.sh is idempotent and fast).
VENV   := .venv
PY     := $(VENV)/bin/python
BOARD  ?= esp32_devkit
PORT   ?=

.PHONY: setup run test fuzz soak bench deploy monitor fleet lint clean

setup:
	@bash tools/setup.sh

## The main job: a node on the Unix port with simulated sensors, publishing to a private mosquitto.
run: setup
	@$(PY) tools/run_local.py

## The whole default suite: lint, mpy-cross builds, lib on CPython and on the Unix port, against a real broker.
test: setup
	@$(PY) -m pytest -q

## A million fuzz cases into the packet decoder.
fuzz: setup
	@FUZZ_CASES=1000000 $(PY) -m pytest -q tests/test_packet_fuzz.py

lint: setup
	@$(VENV)/bin/ruff check .

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
