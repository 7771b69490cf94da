"""`make ha`: the node against a real Home Assistant core.

Home Assistant 2024.3.3 (the newest release that runs on Python 3.11), from
build/ha/venv (tools/ha/setup.sh installs it), on a free 127.0.0.1 port with
a private mosquitto (tools/mosquitto.py). This script onboards it through
its REST API, adds MQTT through the config-flow API, starts `make run`'s
node (boards/unix.py on the Unix port, with the fake Wi-Fi and a STORE so
that every entity exists, and 60 s sensor periods so that a reading the
check asks for is told apart from a scheduled one) and a deep-sleep node,
and checks through the REST and websocket APIs what README's "Home
Assistant" section says. It exits 1 at the first check that fails.

    build/ha/venv/bin/python tools/ha/check.py [--keep]

Runs in build/ha/venv's Python (aiohttp, requests and paho-mqtt 1.6.1 come
with Home Assistant). Traffic goes to 127.0.0.1 only; every wait has a
deadline; it stops only the processes it started, by their ids. --keep
leaves the Home Assistant config directory (its log) in place.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import aiohttp
import paho.mqtt.client as mqtt
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tools import run_local  # noqa: E402
from tools.mosquitto import Mosquitto, free_port  # noqa: E402

HA_BIN = os.path.join(os.path.dirname(sys.executable), "hass")
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")  # tools/setup.sh's Unix port
HA_START_S = 120  # a first start writes its .storage; seconds on this machine
HA_STOP_S = 60
USER, PASSWORD = "check", "check-password-0"
NODE, ROOM = "unix-node", "kitchen"
SLEEPER, SLEEPER_ROOM, SLEEP_S = "unix-sleeper", "garden", 45
EXPIRE_S = 30  # node.discovery.SLEEP_EXPIRE_S: a sleeping node's values are current this long
REBOOT_GRACE_S = 30  # node.node._REBOOT_GRACE_S: a reboot command is dropped before that much uptime
FAKE_MAC = "02:00:00:00:00:01"  # firmware/unix_fakes/network.py's default
PERIOD_S = 60

# boards/unix.py as `make run` runs it, with the fake Wi-Fi (signal, MAC) and
# a flash store (store errors), so that every entity a board can have exists.
NODE_BOARD = """
from unix import *  # noqa: F401,F403 - boards/unix.py, make run's board

WIFI = {"ssid": "ha-check"}  # firmware/unix_fakes/network.py: RSSI -55 dBm, MAC %(mac)s
STORE = {"path": %(store)r, "capacity": 256}
SENSORS = [dict(sensor, period_s=%(period)d) for sensor in SENSORS]
DIAGNOSTICS_S = 10
"""
SLEEPER_BOARD = """
from unix import *  # noqa: F401,F403

NODE = %(node)r
ROOM = %(room)r
DEEP_SLEEP_S = %(sleep)d
"""

# (component, object id, name, entity category) of every entity of NODE.
ENTITIES = [
    ("binary_sensor", "status", "Status", "diagnostic"),
    ("sensor", "temperature", "Temperature", None),
    ("sensor", "humidity", "Humidity", None),
    ("sensor", "pressure", "Pressure", None),
    ("sensor", "illuminance", "Illuminance", None),
    ("sensor", "rssi", "Wi-Fi signal", "diagnostic"),
    ("sensor", "uptime", "Uptime", "diagnostic"),
    ("sensor", "free_heap", "Free heap", "diagnostic"),
    ("sensor", "reconnects", "Reconnects", "diagnostic"),
    ("sensor", "dropped", "Dropped readings", "diagnostic"),
    ("sensor", "buffered", "Buffered readings", "diagnostic"),
    ("sensor", "sensor_errors", "Sensor errors", "diagnostic"),
    ("sensor", "store_errors", "Store errors", "diagnostic"),
    ("button", "restart", "Restart", "config"),
    ("button", "publish_now", "Publish now", None),
    ("number", "interval", "Interval", "config"),
    ("update", "firmware", "Firmware", "config"),
]
# The node takes updates (its secrets hold a key), so it has an update entity.
NODE_SECRETS = 'OTA_KEY = "%s"\n' % ("5e" * 32)
OFFER = {"latest_version": "v-check-2", "title": "House sensor node", "release_summary": "Offered by make ha"}
# reading -> (unit, device class, QoS in boards/unix.py)
READINGS = {
    "temperature": ("°C", "temperature", 1),
    "humidity": ("%", "humidity", 1),
    "pressure": ("hPa", "atmospheric_pressure", 0),
    "illuminance": ("lx", "illuminance", 0),
}
# diagnostic entity -> its key in the node's diagnostics report
REPORT_KEYS = {
    "rssi": "rssi",
    "uptime": "uptime_s",
    "free_heap": "free_heap",
    "reconnects": "reconnects",
    "dropped": "dropped",
    "buffered": "buffered",
    "sensor_errors": "sensor_errors",
    "store_errors": "store_errors",
}
GONE = ("unavailable", "unknown")


class CheckFailed(Exception):
    pass


def wait_for(what, condition, timeout_s, step_s=0.25):
    """condition()'s first true value within timeout_s; CheckFailed otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise CheckFailed("%s: not within %.0f s" % (what, timeout_s))
        time.sleep(step_s)


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


# ---- Home Assistant ----------------------------------------------------------


class HomeAssistant:
    """hass in a config directory of its own, its HTTP API on 127.0.0.1."""

    def __init__(self, keep=False):
        self.dir = tempfile.mkdtemp(prefix="ha-check-")
        self.keep = keep
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.proc = None
        self.token = None
        self.log_path = os.path.join(self.dir, "hass.out")
        with open(os.path.join(self.dir, "configuration.yaml"), "w") as f:
            f.write(
                "homeassistant:\n  name: make ha\n  unit_system: metric\n  time_zone: UTC\n"
                "  latitude: 0\n  longitude: 0\n  elevation: 0\n"
                "http:\n  server_host: 127.0.0.1\n  server_port: %d\n"
                "api:\nconfig:\n"
                # MQTT at info: what it did with each discovery config is in the log.
                "logger:\n  default: warning\n  logs:\n    homeassistant.components.mqtt: info\n" % self.port
            )

    def start(self):
        log = open(self.log_path, "a")
        # --skip-pip: every requirement is in build/ha/venv already (tools/ha/requirements.txt).
        self.proc = subprocess.Popen(
            [HA_BIN, "-c", self.dir, "--skip-pip"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        wait_for("Home Assistant's HTTP API up (log: %s)" % self.log_path, self._answers, HA_START_S, 0.5)
        if self.token:
            wait_for("Home Assistant running", lambda: self.get("/api/config").get("state") == "RUNNING", HA_START_S)

    def _answers(self):
        if self.proc.poll() is not None:
            raise CheckFailed("Home Assistant exited with %d:\n%s" % (self.proc.returncode, self.log_tail()))
        try:
            return requests.get(self.base + "/api/onboarding", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=HA_STOP_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self):
        self.stop()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- onboarding and MQTT

    def onboard(self):
        """The first user, through the onboarding API, and a token for it.
        The core_config step is left out: it makes config entries of
        integrations that reach the Internet (weather, radio)."""
        client_id = self.base + "/"
        r = requests.post(
            self.base + "/api/onboarding/users",
            json={"client_id": client_id, "name": "Check", "username": USER, "password": PASSWORD, "language": "en"},
            timeout=30,
        )
        expect(r.status_code == 200, "onboarding a user: %d %s" % (r.status_code, r.text))
        r = requests.post(
            self.base + "/auth/token",
            data={"grant_type": "authorization_code", "code": r.json()["auth_code"], "client_id": client_id},
            timeout=30,
        )
        expect(r.status_code == 200, "token: %d %s" % (r.status_code, r.text))
        self.token = r.json()["access_token"]  # 30 min: the check takes less
        self.post("/api/onboarding/analytics", {})
        self.post("/api/onboarding/integration", {"client_id": client_id, "redirect_uri": client_id})
        wait_for("Home Assistant running", lambda: self.get("/api/config").get("state") == "RUNNING", HA_START_S)

    def add_mqtt(self, port):
        flow = self.post("/api/config/config_entries/flow", {"handler": "mqtt", "show_advanced_options": False})
        expect(flow.get("step_id") == "broker", "MQTT config flow: %r" % flow)
        result = self.post("/api/config/config_entries/flow/" + flow["flow_id"], {"broker": "127.0.0.1", "port": port})
        expect(result.get("type") == "create_entry", "MQTT config flow: %r" % result)
        expect(result["result"]["state"] == "loaded", "MQTT entry: %r" % result["result"])

    # -- REST and websocket

    def headers(self):
        return {"Authorization": "Bearer " + self.token}

    def get(self, path):
        r = requests.get(self.base + path, headers=self.headers(), timeout=30)
        expect(r.status_code == 200, "GET %s: %d %s" % (path, r.status_code, r.text[:300]))
        return r.json()

    def post(self, path, body):
        r = requests.post(self.base + path, headers=self.headers(), json=body, timeout=30)
        expect(r.status_code in (200, 201), "POST %s: %d %s" % (path, r.status_code, r.text[:300]))
        return r.json()

    def states(self):
        return {s["entity_id"]: s for s in self.get("/api/states")}

    def call(self, domain, service, data):
        self.post("/api/services/%s/%s" % (domain, service), data)

    def ws(self, *commands):
        """The results of websocket commands, in order."""
        return asyncio.run(asyncio.wait_for(self._ws(commands), 30))

    async def _ws(self, commands):
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.base + "/api/websocket") as ws:
                await ws.receive_json()
                await ws.send_json({"type": "auth", "access_token": self.token})
                expect((await ws.receive_json())["type"] == "auth_ok", "websocket auth")
                results = []
                for i, command in enumerate(commands, 1):
                    await ws.send_json(dict(command, id=i))
                    while True:
                        message = await ws.receive_json()
                        if message.get("id") == i:
                            break
                    expect(message.get("success"), "websocket %r: %r" % (command, message))
                    results.append(message["result"])
                return results


class StateLog:
    """Every state_changed event, from a websocket subscription in a thread of
    its own: (monotonic time, entity id, state)."""

    def __init__(self, ha):
        self.ha = ha
        self.changes = []
        self.lock = threading.Lock()
        self.error = None
        self._thread = None
        self._loop = None
        self._ws = None
        self._ready = threading.Event()

    def start(self):
        self._ready.clear()
        self.error = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        expect(self._ready.wait(30), "websocket subscription to state changes: %r" % (self.error,))

    def _main(self):
        try:
            asyncio.run(self._run())
        except Exception as e:  # noqa: BLE001 - kept, and raised by of()
            self.error = e

    async def _run(self):
        self._loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.ha.base + "/api/websocket") as ws:
                self._ws = ws
                await ws.receive_json()
                await ws.send_json({"type": "auth", "access_token": self.ha.token})
                await ws.receive_json()
                await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
                # No receive timeout (aiohttp marks a websocket whose receive
                # timed out as closed abnormally): stop() closes it instead.
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    data = json.loads(message.data)
                    if data.get("type") == "result":
                        self._ready.set()
                    elif data.get("type") == "event":
                        event = data["event"]["data"]
                        new = event.get("new_state") or {}
                        with self.lock:
                            self.changes.append((time.monotonic(), event["entity_id"], new.get("state")))

    def stop(self):
        if self._thread is None:
            return
        if self._loop is not None and self._ws is not None and self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._ws.close(), self._loop).result(10)
            except Exception:  # noqa: BLE001 - closed already (Home Assistant stopped)
                pass
        self._thread.join(timeout=10)
        self._thread = self._loop = self._ws = None

    def of(self, entity_id, since=0.0):
        """(time, state) of each change of entity_id's state since then (an
        event that changes only its attributes is not one)."""
        if self.error is not None:
            raise CheckFailed("the state-change subscription failed: %r" % (self.error,))
        out = []
        with self.lock:
            for t, e, state in self.changes:
                if e == entity_id and t >= since and (not out or out[-1][1] != state):
                    out.append((t, state))
        return out


# ---- MQTT and the nodes ----------------------------------------------------------


class Watcher:
    """A paho subscriber to house/# and homeassistant/#: (monotonic time,
    topic, payload, retain) of every message."""

    def __init__(self, port):
        self.messages = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(client_id="ha-check-watcher", protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc: c.subscribe([("house/#", 1), ("homeassistant/#", 1)])
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        wait_for("the watcher's subscription", lambda: self.client.is_connected(), 10)

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((time.monotonic(), message.topic, bytes(message.payload), bool(message.retain)))

    def on(self, topic, since=0.0):
        with self.lock:
            return [m for m in self.messages if m[1] == topic and m[0] >= since]

    def matching(self, prefix, suffix="", since=0.0):
        with self.lock:
            return [m for m in self.messages if m[1].startswith(prefix) and m[1].endswith(suffix) and m[0] >= since]

    def report(self, node=NODE, room=ROOM):
        reports = self.on("house/%s/%s/diagnostics" % (room, node))
        return json.loads(reports[-1][2]) if reports and reports[-1][2] else None

    def clear(self, topics):
        for topic in topics:
            self.client.publish(topic, b"", 1, retain=True).wait_for_publish(5)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class NodeRunner:
    """firmware/main.py on the Unix port, started again after a reset (exit
    75, machine.reset()) or a deep sleep (exit 0 after machine.deepsleep), as
    a board would be; its output lines with the time each came."""

    def __init__(self, name, port, board, folder):
        self.name = name
        self.port = port
        self.board = board
        self.folder = folder
        self.lines = []
        self.lock = threading.Lock()
        self.proc = None
        self.starts = []
        self.exits = []
        self._supervise = False
        self._thread = None
        self._reader = None

    def start(self):
        self._supervise = True
        self._launch(wake=False)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _launch(self, wake):
        env = run_local.node_environment("127.0.0.1", self.port, self.board, self.folder)
        if wake:
            env["FAKE_RESET_CAUSE"] = "deepsleep"  # firmware/unix_fakes/machine.py: a wake from deep sleep
        self.proc = subprocess.Popen(
            [MICROPYTHON, os.path.join(ROOT, "firmware", "main.py")],
            env=env,
            cwd=self.folder,  # an update's files would go under the working directory
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.starts.append(time.monotonic())
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()

    def _read(self, proc):
        for line in proc.stdout:
            with self.lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def _watch(self):
        while self._supervise:
            proc = self.proc
            if proc.poll() is None:
                time.sleep(0.05)
                continue
            self.exits.append((time.monotonic(), proc.returncode))
            self._reader.join(timeout=5)  # its last lines: did it go to sleep?
            if not self._supervise:
                break
            slept = proc.returncode == 0 and self.first("machine.deepsleep(", since=self.starts[-1])
            if proc.returncode == 75 or slept:
                time.sleep(0.0 if slept else 1.0)  # a board takes a moment to boot again
                if self._supervise:
                    self._launch(wake=bool(slept))
            else:
                print("%s exited with %d:\n%s" % (self.name, proc.returncode, self.output()[-3000:]), flush=True)
                break

    def first(self, text, since=0.0):
        with self.lock:
            for t, line in self.lines:
                if t >= since and text in line:
                    return t
        return None

    def output(self):
        with self.lock:
            return "\n".join(line for _, line in self.lines if "Comparison between bytes and str" not in line)

    def kill(self):
        """SIGKILL, as a power cut: no DISCONNECT, the broker sends the will."""
        self._supervise = False
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)


# ---- the checks --------------------------------------------------------------


class Check:
    def __init__(self, keep):
        self.folder = tempfile.mkdtemp(prefix="ha-check-boards-")
        self.broker = None
        self.ha = HomeAssistant(keep)
        self.log = StateLog(self.ha)
        self.watcher = None
        self.node = None
        self.sleeper = None
        self.passed = 0
        self.entity_ids = {}
        self.device = None

    def step(self, title, fn):
        started = time.monotonic()
        note = fn()
        self.passed += 1
        lines = note if isinstance(note, list) else []
        note = "" if lines or not note else "  " + note
        print("ok    %-70s %5.1f s%s" % (title, time.monotonic() - started, note), flush=True)
        for line in lines:
            print("        " + line, flush=True)

    def run(self):
        with open(os.path.join(self.folder, "ha_node.py"), "w") as f:
            f.write(NODE_BOARD % {"mac": FAKE_MAC, "store": os.path.join(self.folder, "store"), "period": PERIOD_S})
        with open(os.path.join(self.folder, "ha_sleeper.py"), "w") as f:
            f.write(SLEEPER_BOARD % {"node": SLEEPER, "room": SLEEPER_ROOM, "sleep": SLEEP_S})
        self.broker = Mosquitto().start()
        self.watcher = Watcher(self.broker.port)
        print("mosquitto on 127.0.0.1:%d; Home Assistant in %s" % (self.broker.port, self.ha.dir), flush=True)
        self.step("Home Assistant 2024.3.3 up, onboarded through its REST API", self.start_ha)
        self.step("MQTT added through the config-flow API", lambda: self.ha.add_mqtt(self.broker.port))
        self.log.start()
        self.node = NodeRunner(NODE, self.broker.port, "ha_node", self.folder)
        self.node.start()
        with open(os.path.join(self.folder, "secrets.py"), "w") as f:
            f.write(NODE_SECRETS)
        self.step("entity registry: %d entities, names, unique ids, categories" % len(ENTITIES), self.registry)
        self.step("device: name, model, manufacturer, sw/hw version, MAC, area", self.device_info)
        self.step("readings: state, unit, device class, state class; status on", self.readings)
        self.step("qos and origin: as the discovery configs say", self.qos_and_origin)
        self.step("diagnostic entities carry the node's diagnostics report", self.diagnostics)
        self.step("publish now (button): the readings come at once", self.publish_now)
        self.step("interval (number): 5 s changes the node's period, then back", self.interval)
        self.step("firmware (update): installed version, the host's offer, Install asks the host", self.firmware)
        self.step("restart (button): the node restarts (after its %d s grace)" % REBOOT_GRACE_S, self.restart)
        self.step("SIGKILL: every entity unavailable, a restart brings them back", self.power_cut)
        self.step("deep sleep: first wake shown, values expire asleep, status off", self.deep_sleep)
        self.step("Home Assistant restart: the node announces again (no retained configs)", self.ha_restart)
        self.step("Home Assistant's log: no warning or error from MQTT", self.ha_log)

    def close(self):
        for runner in (self.node, self.sleeper):
            if runner is not None:
                runner.kill()
        self.log.stop()
        self.ha.close()
        if self.watcher is not None:
            self.watcher.close()
        if self.broker is not None:
            self.broker.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers

    def start_ha(self):
        self.ha.start()
        self.ha.onboard()

    def entities_of(self, node):
        registry, devices = self.ha.ws({"type": "config/entity_registry/list"}, {"type": "config/device_registry/list"})
        device = [d for d in devices if d["name"] == node]
        mine = [e for e in registry if e["platform"] == "mqtt" and e["unique_id"].startswith(node + "_")]
        return (device[0] if device else None), mine

    def ids(self, *objects):
        return [self.entity_ids[o] for o in objects]

    def available(self, states, entity_id):
        return entity_id in states and states[entity_id]["state"] not in GONE

    # -- the node as Home Assistant sees it

    def registry(self):
        def complete():
            device, entities = self.entities_of(NODE)
            return (device, entities) if device and len(entities) >= len(ENTITIES) else None

        device, entities = wait_for("the node's entities in the registry", complete, 30)
        by_unique = {e["unique_id"]: e for e in entities}
        expect(len(entities) == len(ENTITIES), "entities: %r" % sorted(by_unique))
        for component, object_id, name, category in ENTITIES:
            entry = by_unique.get("%s_%s" % (NODE, object_id))
            expect(entry is not None, "no entity %s_%s: %r" % (NODE, object_id, sorted(by_unique)))
            expect(entry["entity_id"].startswith(component + "."), "%s: %s" % (object_id, entry["entity_id"]))
            expect(entry["original_name"] == name, "%s: name %r" % (object_id, entry["original_name"]))
            expect(entry["entity_category"] == category, "%s: category %r" % (object_id, entry["entity_category"]))
            expect(entry["device_id"] == device["id"], "%s: on another device" % object_id)
            self.entity_ids[object_id] = entry["entity_id"]
        self.device = device
        return ["%-40s %-18s %s" % (self.entity_ids[o], name, category or "") for _, o, name, category in ENTITIES]

    def device_info(self):
        d = self.device
        expect(d["name"] == NODE and d["model"] == "MicroPython Unix port", "device %r" % d)
        expect(d["manufacturer"] == "MicroPython", "manufacturer %r" % d["manufacturer"])
        expect(d["sw_version"].startswith("dev (MicroPython "), "sw_version %r" % d["sw_version"])
        expect(bool(d["hw_version"]), "hw_version %r" % d["hw_version"])
        expect(["mac", FAKE_MAC] in d["connections"], "connections %r" % d["connections"])
        expect(d["area_id"] == ROOM, "area %r" % d["area_id"])
        return "%s by %s, sw %r, hw %r, MAC %s, area %s" % (
            d["model"],
            d["manufacturer"],
            d["sw_version"],
            d["hw_version"],
            FAKE_MAC,
            d["area_id"],
        )

    def readings(self):
        # The node's first readings go out before Home Assistant has taken
        # in its configs and subscribed (an always-on node's readings are not
        # retained). They come again when Home Assistant's birth message
        # follows (it waits for discovery to settle), else within a period.
        states = wait_for(
            "the readings' states",
            lambda: (lambda s: s if all(self.available(s, self.entity_ids[r]) for r in READINGS) else None)(
                self.ha.states()
            ),
            PERIOD_S + 15,
        )
        for reading, (unit, device_class, _) in READINGS.items():
            state = states[self.entity_ids[reading]]
            float(state["state"])
            a = state["attributes"]
            expect(a.get("unit_of_measurement") == unit, "%s: unit %r" % (reading, a))
            expect(a.get("device_class") == device_class, "%s: device class %r" % (reading, a))
            expect(a.get("state_class") == "measurement", "%s: state class %r" % (reading, a))
            expect(a.get("friendly_name") == "%s %s" % (NODE, reading.capitalize()), "%s: %r" % (reading, a))
        expect(states[self.entity_ids["status"]]["state"] == "on", "status: %r" % states[self.entity_ids["status"]])
        return "%s = %s °C" % (self.entity_ids["temperature"], states[self.entity_ids["temperature"]]["state"])

    def debug_info(self, device_id):
        return {
            e["entity_id"]: e
            for e in self.ha.ws({"type": "mqtt/device/debug_info", "device_id": device_id})[0]["entities"]
        }

    def qos_and_origin(self):
        def received():
            info = self.debug_info(self.device["id"])
            return info if all(self.messages_on(info, r) for r in READINGS) else None

        info = wait_for("readings in Home Assistant's MQTT debug info", received, 30)
        for reading, (_, _, qos) in READINGS.items():
            entity = info[self.entity_ids[reading]]
            config_qos = entity["discovery_data"]["payload"].get("qos")
            expect(
                config_qos == qos,
                "%s: discovery config has qos %r, the node publishes at %d" % (reading, config_qos, qos),
            )
            got = {m["qos"] for m in self.messages_on(info, reading)}
            expect(got == {qos}, "%s: Home Assistant received it at QoS %r, the node sends %d" % (reading, got, qos))
        for entity_id, entity in info.items():
            origin = entity["discovery_data"]["payload"].get("origin")
            expect(origin == {"name": "house-sensor-node", "sw_version": "dev"}, "%s: origin %r" % (entity_id, origin))
        return "temperature, humidity QoS 1; pressure, illuminance QoS 0"

    def messages_on(self, info, reading):
        entity = info[self.entity_ids[reading]]
        topic = "house/%s/%s" % (ROOM, reading)
        return [m for s in entity["subscriptions"] if s["topic"] == topic for m in s["messages"]]

    def diagnostics(self):
        keys = ["status"] + list(REPORT_KEYS)

        def agree():
            report = self.watcher.report()
            states = self.ha.states()
            if report is None or not all(self.available(states, self.entity_ids[k]) for k in keys):
                return None
            for entity, key in REPORT_KEYS.items():
                if float(states[self.entity_ids[entity]]["state"]) != report[key]:
                    return None
            interval = states[self.entity_ids["interval"]]["state"]
            if float(interval) != report["interval_s"]:
                return None
            attributes = states[self.entity_ids["status"]]["attributes"]
            if attributes.get("published") != report["published"]:
                return None
            return report, states

        report, states = wait_for("diagnostic states equal to the node's report", agree, 30, 0.5)
        expect(report["rssi"] == -55, "rssi %r" % report)
        rssi = states[self.entity_ids["rssi"]]["attributes"]
        expect(rssi.get("unit_of_measurement") == "dBm" and rssi.get("device_class") == "signal_strength", rssi)
        heap = states[self.entity_ids["free_heap"]]["attributes"]
        expect(heap.get("unit_of_measurement") == "B" and heap.get("device_class") == "data_size", heap)
        return "Wi-Fi %d dBm, free heap %d B, uptime %d s, interval %d s" % (
            report["rssi"],
            report["free_heap"],
            report["uptime_s"],
            report["interval_s"],
        )

    # -- controls

    def publish_now(self):
        # Periods are 60 s: readings within 3 s of the press were asked for.
        since = self.node.starts[-1]
        wait_for("the first readings", lambda: self.watcher.on("house/%s/temperature" % ROOM, since), 30)
        time.sleep(2)
        pressed = time.monotonic()
        self.ha.call("button", "press", {"entity_id": self.entity_ids["publish_now"]})
        for reading in READINGS:
            topic = "house/%s/%s" % (ROOM, reading)
            wait_for("%s after publish now" % reading, lambda topic=topic: self.watcher.on(topic, pressed), 3, 0.05)
        late = (self.watcher.on("house/%s/temperature" % ROOM, pressed)[0][0] - pressed) * 1000
        return "readings %.0f ms after the press" % late

    def firmware(self):
        """The update entity as ota.updater feeds it: the installed version,
        then a newer one the host offers (retained on ota/in/offer, as `make
        ota SERVE=1` does), and Install publishing `install` for the host."""
        entity = self.entity_ids["firmware"]
        base = "house/%s/%s/ota/" % (ROOM, NODE)
        installed = wait_for("the node's ota/installed", lambda: self.watcher.on(base + "installed"), 20)
        version = json.loads(installed[-1][2])["installed_version"]
        state = wait_for("the update entity up to date", lambda: self._update_state(entity, "off"), 20)
        expect(state["attributes"]["installed_version"] == version, "installed_version %r" % state["attributes"])
        self.watcher.client.publish(base + "in/offer", json.dumps(OFFER), 1, retain=True).wait_for_publish(5)
        try:
            state = wait_for(
                "the update entity offering %s" % OFFER["latest_version"], lambda: self._update_state(entity, "on"), 20
            )
            attributes = state["attributes"]
            for key in ("latest_version", "release_summary", "title"):
                expect(attributes.get(key) == OFFER[key], "%s: %r" % (key, attributes))
            pressed = time.monotonic()
            self.ha.call("update", "install", {"entity_id": entity})
            asked = wait_for("`install` on %sinstall" % base, lambda: self.watcher.on(base + "install", pressed), 10)
            expect(asked[0][2] == b"install", "payload %r" % asked[0][2])
        finally:
            self.watcher.clear([base + "in/offer"])
        return "installed %r, offered %r, Install published %r" % (version, OFFER["latest_version"], asked[0][2])

    def _update_state(self, entity, wanted):
        state = self.ha.states().get(entity)
        return state if state is not None and state["state"] == wanted else None

    def interval(self):
        topic = "house/%s/temperature" % ROOM
        entity = self.entity_ids["interval"]
        self.ha.call("number", "set_value", {"entity_id": entity, "value": 5})
        wait_for("the node's log: interval now 5 s", lambda: self.node.first("command: interval now 5 s"), 10)
        wait_for("the interval number at 5", lambda: float(self.ha.states()[entity]["state"]) == 5, 10)
        start = time.monotonic()
        arrivals = wait_for(
            "four readings 5 s apart", lambda: (lambda m: m if len(m) >= 4 else None)(self.watcher.on(topic, start)), 30
        )
        gaps = [b[0] - a[0] for a, b in zip(arrivals, arrivals[1:], strict=False)][:3]
        expect(all(4.0 <= g <= 6.0 for g in gaps), "gaps between readings at interval 5 s: %r" % gaps)
        self.ha.call("number", "set_value", {"entity_id": entity, "value": PERIOD_S})
        wait_for(
            "the interval number back at %d" % PERIOD_S,
            lambda: float(self.ha.states()[entity]["state"]) == PERIOD_S,
            10,
        )
        return "gaps %s s" % ", ".join("%.1f" % g for g in gaps)

    def restart(self):
        up = self.node.starts[-1]
        wait = up + REBOOT_GRACE_S + 2 - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the node drops a reboot in its first 30 s up (a flood's defence)
        starts = len(self.node.starts)
        pressed = time.monotonic()
        self.ha.call("button", "press", {"entity_id": self.entity_ids["restart"]})
        wait_for("the node's log: command: reboot", lambda: self.node.first("command: reboot", pressed), 10)
        wait_for("the node started again", lambda: len(self.node.starts) > starts, 15)
        status = self.entity_ids["status"]
        try:
            wait_for(
                "status off then on", lambda: [s for _, s in self.log.of(status, pressed)][-2:] == ["off", "on"], 20
            )
        except CheckFailed as e:
            raise CheckFailed("%s: status changes %r" % (e, self.log.of(status, pressed)))
        exits = [code for t, code in self.node.exits if t >= pressed]
        expect(exits[:1] == [75], "the node's exit: %r (75: machine.reset())" % exits)
        temperature = self.entity_ids["temperature"]
        wait_for("temperature back", lambda: self.available(self.ha.states(), temperature), 20)
        off = [t for t, s in self.log.of(status, pressed) if s == "off"][0]
        return "status off %.0f ms after the press, node up again" % ((off - pressed) * 1000)

    def power_cut(self):
        states = self.ha.states()
        followers = [e for o, e in self.entity_ids.items() if o != "status"]  # the status is off, not unavailable
        expect(all(states[e]["state"] != "unavailable" for e in followers), "not all available before the cut")
        killed = time.monotonic()
        self.node.kill()

        def all_gone():
            s = self.ha.states()
            return (
                all(s[e]["state"] == "unavailable" for e in followers)
                and s[self.entity_ids["status"]]["state"] == "off"
            )

        wait_for("every entity unavailable after SIGKILL", all_gone, 10, 0.1)
        status = self.entity_ids["status"]
        times = [t for e in followers for t, s in self.log.of(e, killed) if s == "unavailable"]
        times += [t for t, s in self.log.of(status, killed) if s == "off"]
        taken = max(times) - killed if times else float("nan")
        self.node = NodeRunner(NODE, self.broker.port, "ha_node", self.folder)
        self.node.start()

        def all_back():
            s = self.ha.states()
            readings = all(self.available(s, self.entity_ids[r]) for r in READINGS)
            controls = all(s[e]["state"] != "unavailable" for e in followers)
            return readings and controls and s[self.entity_ids["status"]]["state"] == "on"

        wait_for("every entity back after the restart", all_back, 30)
        return "%d entities unavailable, status off, %.0f ms after SIGKILL" % (len(followers), taken * 1000)

    def deep_sleep(self):
        self.sleeper = NodeRunner(SLEEPER, self.broker.port, "ha_sleeper", self.folder)
        self.sleeper.start()
        asleep = wait_for(
            "the sleeper's first wake", lambda: self.sleeper.first("machine.deepsleep(%d)" % (SLEEP_S * 1000)), 30
        )

        def registered():
            device, entities = self.entities_of(SLEEPER)
            return entities if device and len(entities) >= 11 else None

        entities = wait_for("the sleeper's entities", registered, 30)
        by_object = {e["unique_id"][len(SLEEPER) + 1 :]: e["entity_id"] for e in entities}
        expect(
            not [e for e in by_object.values() if e.split(".")[0] in ("button", "number")], "controls: %r" % by_object
        )
        readings = [by_object[r] for r in READINGS]
        status = by_object["status"]

        def first_wake_shown():
            s = self.ha.states()
            return s if all(self.available(s, e) for e in readings) and s[status]["state"] == "off" else None

        states = wait_for("the first wake's readings in Home Assistant, status off", first_wake_shown, 15, 0.2)
        shown = time.monotonic()
        expect(shown - asleep < 15, "readings shown %.1f s after it went to sleep" % (shown - asleep))
        info = self.debug_info(self.entities_of(SLEEPER)[0]["id"])
        for entity_id in readings:
            config = info[entity_id]["discovery_data"]["payload"]
            expect(config.get("expire_after") == EXPIRE_S and "availability_topic" not in config, config)
        # Asleep until asleep + SLEEP_S: the values must expire before it wakes.
        wait_for(
            "the readings unavailable (expired) while it sleeps",
            lambda: all(self.ha.states()[e]["state"] == "unavailable" for e in readings),
            EXPIRE_S + 10,
            0.5,
        )
        expired = time.monotonic()
        woke = self.sleeper.first("mqtt: connected", since=asleep)
        expect(woke is None or woke > expired, "woke at +%.1f s, before the values expired" % ((woke or 0) - asleep))
        expect(self.ha.states()[status]["state"] == "off", "status while asleep")
        wait_for(
            "the second wake's readings",
            lambda: all(self.available(self.ha.states(), e) for e in readings),
            SLEEP_S + 20,
            0.5,
        )
        temperature = states[readings[0]]["state"]
        self.sleeper.kill()
        return "first wake %s °C shown; expired %.0f s after; shown again at the next wake" % (
            temperature,
            expired - shown,
        )

    def ha_restart(self):
        node_configs = sorted(
            {m[1] for m in self.watcher.matching("homeassistant/", "/config") if "/%s/" % NODE in m[1]}
        )
        expect(len(node_configs) == len(ENTITIES), "configs seen: %r" % node_configs)
        self.log.stop()
        self.ha.stop()
        # A broker that lost its retained messages: only the node's announce brings the entities back.
        self.watcher.clear(node_configs)
        cleared = time.monotonic()
        self.ha.start()
        self.log.start()
        birth = wait_for(
            "Home Assistant's birth message",
            lambda: [m[0] for m in self.watcher.on("homeassistant/status", cleared) if m[2] == b"online"],
            60,
        )[0]
        wait_for(
            "the node's log: announced again",
            lambda: self.node.first("configs announced (Home Assistant online)", birth - 1),
            15,
        )
        again = {m[1] for m in self.watcher.matching("homeassistant/", "/config", birth) if m[2]}
        expect(set(node_configs) <= again, "not announced again: %r" % sorted(set(node_configs) - again))
        for reading in READINGS:
            topic = "house/%s/%s" % (ROOM, reading)
            wait_for("%s published again" % reading, lambda topic=topic: self.watcher.on(topic, birth), 10)

        def all_back():
            s = self.ha.states()
            readings = all(self.available(s, self.entity_ids[r]) for r in READINGS)
            others = all(s.get(e, {}).get("state") != "unavailable" for e in self.entity_ids.values())
            return readings and others

        wait_for("every entity back, with its state", all_back, 60)
        last = max(self.watcher.on("house/%s/%s" % (ROOM, r), birth)[0][0] for r in READINGS)
        return "%d configs and the 4 readings again %.0f ms after its birth message" % (
            len(node_configs),
            (last - birth) * 1000,
        )

    def ha_log(self):
        bad = [
            line
            for line in self.ha.log_text().splitlines()
            if ("WARNING" in line or "ERROR" in line) and "homeassistant.components.mqtt" in line
        ]
        expect(not bad, "Home Assistant logged:\n" + "\n".join(bad[:20]))
        found = [line for line in self.ha.log_text().splitlines() if "Found new component" in line]
        return "%d discovered entities logged, from %s" % (
            len(found),
            "house-sensor-node" if any("house-sensor-node" in line for line in found) else "?",
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep Home Assistant's config directory and log")
    args = parser.parse_args(argv)
    if not os.path.exists(HA_BIN):
        print("make ha: %s missing: run tools/ha/setup.sh (make ha does)" % HA_BIN, file=sys.stderr)
        return 2
    check = Check(args.keep)
    started = time.monotonic()
    try:
        check.run()
    except (CheckFailed, AssertionError, KeyError, ValueError) as e:
        print("FAIL  %s" % e, flush=True)
        for runner in (check.node, check.sleeper):
            if runner is not None:
                print("---- %s's output (last lines)\n%s" % (runner.name, runner.output()[-2500:]))
        print("---- Home Assistant's log (last lines, %s)\n%s" % (check.ha.log_path, check.ha.log_tail(30)))
        print("make ha: %d passed, 1 failed" % check.passed)
        return 1
    finally:
        check.close()
    print("make ha: %d passed, 0 failed in %.0f s" % (check.passed, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
