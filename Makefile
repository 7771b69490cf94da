# Every target installs what it needs first (tools/setup.sh is idempotent and fast).
VENV   := .venv
PY     := $(VENV)/bin/python
BOARD   ?= esp32_devkit
PORT    ?=
NODES   ?= 20
FLEET_S ?= 20

.PHONY: setup run test fuzz soak bench bench-store recovery deploy monitor fleet ha lint clean

setup:
	@bash tools/setup.sh

## The main job: a node on the Unix port with simulated sensors, publishing to a private mosquitto.
## RUN_ARGS="--host H --port P" uses your broker instead (or MQTT_HOST/MQTT_PORT); RUN_ARGS=--acl: passwords and the house ACL.
run: setup
	@$(PY) tools/run_local.py $(RUN_ARGS)

## The whole default suite: lint, mpy-cross builds, lib on CPython and on the Unix port, against a real broker.
test: setup
	@$(PY) -m pytest -q

## A million fuzz cases into the packet decoder.
fuzz: setup
	@FUZZ_CASES=1000000 $(PY) -m pytest -q -s -p no:cacheprovider tests/test_packet_fuzz.py  # -s: the case count and seed show

## About ten minutes of random cuts, black holes and delays through a fault proxy: QoS 0/1/2 streams on the Unix port.
soak: setup
	@$(PY) tools/soak.py --duration $(or $(SOAK_S),600)

## Our client against umqtt.simple, mqtt_async, chumicro-mqtt and a raw socket, in one run: bench/RESULTS.md.
bench: setup
	@$(PY) -m tools.bench

## The flash store on the Unix port: appends and replays per second, flash bytes and syncs per reading, into
## bench/out/STORE.md (git-ignored); PUBLISH=1 also replaces the committed bench/STORE.md.
bench-store: setup
	@mkdir -p bench/out
	@MICROPYPATH=lib $(VENV)/bin/micropython tools/bench_store.py > bench/out/STORE.md.tmp && mv bench/out/STORE.md.tmp bench/out/STORE.md
	@cat bench/out/STORE.md
	@$(if $(PUBLISH),cp bench/out/STORE.md bench/STORE.md && echo "bench-store: bench/STORE.md replaced",echo "bench-store: written to bench/out/STORE.md (PUBLISH=1 replaces bench/STORE.md)")

## The node's deadline tests, three times: how long each hung step takes to give up and recover: bench/RECOVERY.md.
recovery: setup
	@$(PY) tools/recovery.py

## Compile lib/ for the board, copy what changed since the last deploy, reset: make deploy BOARD=pico_w PORT=/dev/ttyACM0 [FOLLOW=1] [DRY_RUN=1]
deploy: setup
	@$(PY) tools/deploy.py --board $(BOARD) $(if $(PORT),--port $(PORT)) $(if $(FOLLOW),--follow) $(if $(DRY_RUN),--dry-run)

## Over the air, through the node's broker: what deploy would copy, compiled, signed with the board's OTA_KEY, sent in chunks:
## make ota BOARD=pico_w [NODE=pico-bedroom] [SECRETS=boards/secrets.py] [SERVE=1: install when Home Assistant asks] [ABORT=1]
ota: setup
	@$(PY) tools/ota.py --board $(BOARD) $(if $(NODE),--node $(NODE)) $(if $(SECRETS),--secrets $(SECRETS)) $(if $(SERVE),--serve) $(if $(ABORT),--abort) $(OTA_ARGS)

## An update with the node SIGKILLed at 24 points (receiving, verifying, activating, first boot; the default test run takes 4)
ota-kill: setup
	@OTA_KILL_POINTS=$(or $(POINTS),24) $(PY) -m pytest -q -s -p no:cacheprovider tests/test_ota_kill.py

## Live table of readings and nodes on the broker (MQTT_HOST/MQTT_PORT, default 127.0.0.1:1883); MONITOR_ARGS=--plain or --json
monitor: setup
	@$(PY) tools/monitor.py $(MONITOR_ARGS)

## NODES simulated nodes against a private mosquitto for FLEET_S seconds: delivery rate, losses per QoS
fleet: setup
	@$(PY) tools/fleet.py --nodes $(NODES) --seconds $(FLEET_S)

## A real Home Assistant core (2024.3.3, in its own venv under build/ha/) against make run's node and a deep-sleep
## node: entities, device, controls, availability, expiry, HA's restart. Minutes; not part of `make test`.
ha: setup
	@bash tools/ha/setup.sh
	@build/ha/venv/bin/python tools/ha/check.py $(HA_ARGS)

lint: setup
	@$(VENV)/bin/ruff check .

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
