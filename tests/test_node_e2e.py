"""End to end: firmware/main.py on the MicroPython Unix port, as `make run`
starts it, against a private mosquitto, watched by a paho subscriber. Every
sensor of boards/unix.py publishes, availability and Home Assistant
discovery are retained, the last will fires when the process dies, and
readings taken while the broker is down arrive, in order, once it is back.
Also: every board file in boards/ loads, and a broken one is refused by name."""

import importlib.util
import json
import os
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from node import config as board_config
from node import discovery
from node.build import _tx_size
from node_harness import expected_payloads
from sensors import driver_class
from tools import deploy, run_local

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARDS = os.path.join(ROOT, "boards")
MAIN = os.path.join(ROOT, "firmware", "main.py")
STATUS = "house/kitchen/unix-node/status"
DIAGNOSTICS = "house/kitchen/unix-node/diagnostics"
UNIX_SENSORS = ("temperature", "humidity", "pressure", "illuminance")
# Home Assistant 2024.3's abbreviations (and unabbreviated keys) for what the configs use.
HA_KEYS = {"name", "uniq_id", "stat_t", "stat_cla", "avty_t", "dev", "o", "unit_of_meas", "dev_cla", "val_tpl"}
HA_KEYS |= {"exp_aft", "sug_dsp_prc", "ent_cat", "json_attr_t", "cmd_t", "pl_on", "pl_off", "qos"}
HA_KEYS |= {"min", "max", "step", "mode"}
HA_DEVICE_KEYS = {"ids", "cns", "name", "mdl", "mf", "sa", "sw", "hw"}
# boards/unix.py in Home Assistant: (component, object id) of each entity. No
# Wi-Fi: no signal entity and no MAC; no STORE: no store errors.
UNIX_ENTITIES = [("binary_sensor", "status"), ("button", "restart"), ("button", "publish_now"), ("number", "interval")]
UNIX_ENTITIES += [("sensor", name) for name in UNIX_SENSORS]
UNIX_ENTITIES += [("sensor", name) for name in ("uptime", "free_heap", "reconnects", "dropped", "buffered")]
UNIX_ENTITIES += [("sensor", "sensor_errors")]


def wait_until(condition, timeout_s, step_s=0.02):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


def load_board_file(path):
    name = "board_under_test_%d" % abs(hash(path))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Subscriber:
    """A paho client (MQTT 3.1.1) recording (arrival time, topic, payload, qos, retain)."""

    def __init__(self, broker, topics, client_id="", clean_session=True):
        self.topics = topics
        self.messages = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean_session
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda client, userdata, mid, reason_codes, properties: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)  # back at once when a test restarts the broker
        self.client.connect(broker.address[0], broker.address[1], keepalive=10)
        self.client.loop_start()
        assert self.subscribed.wait(5), "no SUBACK from the broker"

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((time.monotonic(), message.topic, message.payload, message.qos, message.retain))

    def on(self, topic):
        with self.lock:
            return [m for m in self.messages if m[1] == topic]

    def payloads(self, topic):
        return [m[2] for m in self.on(topic)]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class NodeProcess:
    """firmware/main.py on the Unix port; stdout collected line by line, each
    line stamped with the host's monotonic clock. env: extra variables."""

    def __init__(self, broker, board="unix", extra_path=None, env=None):
        host, port = broker.address
        environment = run_local.node_environment(host, port, board)
        if extra_path is not None:
            environment["MICROPYPATH"] += ":" + extra_path
        environment.update(env or {})
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            run_local.micropython_command() + [MAIN],
            env=environment,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = []
        self.times = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.times.append(time.monotonic())
            self.lines.append(line.rstrip("\n"))

    def first(self, text, after=0.0):
        """Host time of the first line containing text (at or after `after`), or None."""
        for t, line in zip(list(self.times), list(self.lines), strict=False):  # a line may be half-added
            if t >= after and text in line:
                return t
        return None

    def output(self):
        return "\n".join(self.lines)

    def count(self, text):
        return sum(1 for line in list(self.lines) if text in line)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        self.reader.join(timeout=5)


@pytest.fixture
def nodes():
    """Starts node processes; each is SIGKILLed at the end, whatever happened."""
    started = []

    def start(*args, **kwargs):
        node = NodeProcess(*args, **kwargs)
        started.append(node)
        return node

    yield start
    for node in started:
        node.kill()


@pytest.fixture
def subscribers():
    made = []

    def make(*args, **kwargs):
        sub = Subscriber(*args, **kwargs)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()


# ---- boards/unix.py, end to end -----------------------------------------------


def test_unix_node_publishes_every_sensor_status_and_discovery(make_broker, nodes, subscribers):
    broker = make_broker()
    live = subscribers(broker, ["house/#"])
    node = nodes(broker)
    topics = ["house/kitchen/" + name for name in UNIX_SENSORS]
    assert wait_until(lambda: all(live.on(t) for t in topics), 10), (live.messages, node.output())
    assert node.proc.poll() is None, node.output()
    assert node.count("mqtt: connected to 127.0.0.1:%d" % broker.port) == 1, node.output()

    # The first reading of each sensor is the simulated series' first value.
    board = board_config.load(load_board_file(os.path.join(BOARDS, "unix.py")))
    for name, s in zip(UNIX_SENSORS, board["SENSORS"], strict=True):
        first = live.on("house/kitchen/" + name)[0]
        assert first[2] == expected_payloads(s["driver"], s["params"]["seed"], 1)[0], (name, first)
        assert first[3] == s["qos"], (name, first)
        assert first[4] is False, "readings are not retained"

    # A subscriber that comes later (Home Assistant) gets the retained
    # status, discovery configs and diagnostics report.
    late = subscribers(broker, [STATUS, "homeassistant/#", DIAGNOSTICS])
    count = len(UNIX_ENTITIES)
    assert wait_until(lambda: len([m for m in late.messages if m[1].startswith("homeassistant/")]) >= count, 5)
    assert wait_until(lambda: late.on(DIAGNOSTICS), 5), node.output()
    assert [(m[2], m[4]) for m in late.on(STATUS)] == [(b"online", True)]
    assert node.count("discovery: %d configs announced (connected)" % count) == 1, node.output()
    configs = {m[1]: m for m in late.messages if m[1].startswith("homeassistant/")}
    assert sorted(configs) == sorted("homeassistant/%s/unix-node/%s/config" % e for e in UNIX_ENTITIES)
    unique_ids = set()
    for topic, message in configs.items():
        assert message[4] is True, "discovery configs are retained"
        cfg = json.loads(message[2])
        assert set(cfg) <= HA_KEYS, set(cfg) - HA_KEYS
        assert set(cfg["dev"]) <= HA_DEVICE_KEYS, set(cfg["dev"]) - HA_DEVICE_KEYS
        assert cfg["dev"]["ids"] == ["unix-node"] and cfg["dev"]["name"] == "unix-node", topic
        assert cfg["o"] == {"name": "house-sensor-node", "sw": "dev"}, topic  # no version file on the Unix port
        if not topic.startswith("homeassistant/binary_sensor/"):
            assert cfg["avty_t"] == STATUS, topic
        unique_ids.add(cfg["uniq_id"])
    assert len(unique_ids) == count
    for name, s in zip(UNIX_SENSORS, board["SENSORS"], strict=True):
        cfg = json.loads(configs["homeassistant/sensor/unix-node/%s/config" % name][2])
        driver = driver_class(s["driver"])
        assert cfg["name"] == name.capitalize()
        assert cfg["stat_t"] == "house/kitchen/" + name
        assert cfg["unit_of_meas"] == driver.UNITS[0]
        assert cfg["dev_cla"] == driver.DEVICE_CLASSES[0]
        assert cfg["stat_cla"] == "measurement"
        assert cfg["qos"] == s["qos"]
    device = json.loads(configs["homeassistant/binary_sensor/unix-node/status/config"][2])["dev"]
    assert device["mdl"] == "MicroPython Unix port" and device["mf"] == "MicroPython", device
    assert device["sw"].startswith("dev (MicroPython "), device
    assert device["sa"] == "kitchen" and "cns" not in device, device  # no Wi-Fi, no MAC
    report = json.loads(late.on(DIAGNOSTICS)[0][2])
    assert late.on(DIAGNOSTICS)[0][4] is True and report["interval_s"] == 2, report


def test_the_deployed_version_is_the_firmware_version_home_assistant_shows(make_broker, nodes, subscribers, tmp_path):
    deploy.write_version_file(str(tmp_path))  # what make deploy puts at /firmware_version.py
    with open(tmp_path / "firmware_version.py") as f:
        version = f.read().split("'")[1]
    assert version == deploy.firmware_version() != "unknown"
    broker = make_broker()
    late_enough = subscribers(broker, ["homeassistant/binary_sensor/unix-node/status/config"])
    node = nodes(broker, extra_path=str(tmp_path))
    assert wait_until(lambda: late_enough.messages, 10), node.output()
    cfg = json.loads(late_enough.messages[0][2])
    assert cfg["o"]["sw"] == version and cfg["dev"]["sw"].startswith(version + " (MicroPython "), cfg


def test_last_will_offline_when_node_process_is_killed(make_broker, nodes, subscribers):
    broker = make_broker()
    watcher = subscribers(broker, [STATUS])
    node = nodes(broker)
    assert wait_until(lambda: b"online" in watcher.payloads(STATUS), 10), node.output()
    node.proc.kill()  # SIGKILL: no DISCONNECT, the broker sees the socket close
    node.proc.wait(timeout=5)
    assert wait_until(lambda: watcher.payloads(STATUS)[-1:] == [b"offline"], 5), watcher.messages
    late = subscribers(broker, [STATUS])
    assert wait_until(lambda: late.on(STATUS), 5)
    assert [(m[2], m[4]) for m in late.on(STATUS)] == [(b"offline", True)], "the will is retained"


# ---- broker down: readings wait in the ring ---------------------------------

OFFLINE_BOARD = """
MODEL = "offline test"
ROOM = "kitchen"
NODE = "offline-node"
BROKER = {"host": "127.0.0.1", "port": 1883, "keepalive_s": 10}
SENSORS = [
    {"driver": "sim_temperature", "period_s": 1, "qos": 1, "params": {"seed": 1}},
    {"driver": "sim_humidity", "period_s": 1, "qos": 1, "params": {"seed": 2}},
]
BUFFER = 64
DIAGNOSTICS_S = 0
DISCOVERY = False
"""


def delivered_in_order(received, expected, redelivery_window=5):
    """Matches the received payloads against the series the node reads:
    each must be the next reading, or (QoS 1 is at least once) a copy of
    one of the last few. Returns how many distinct readings came, in order;
    fails on a gap or a reordering."""
    j = 0
    for position, payload in enumerate(received):
        if j < len(expected) and payload == expected[j]:
            j += 1
        elif payload in expected[max(0, j - redelivery_window) : j]:
            continue
        else:
            raise AssertionError(
                "reading %d is %r: expected %r (next in the series) or a redelivery\nreceived %r\nseries %r"
                % (position, payload, expected[j] if j < len(expected) else None, received, expected[: j + 5])
            )
    return j


def test_readings_taken_while_broker_is_down_arrive_in_order_after_restart(make_broker, nodes, subscribers, tmp_path):
    (tmp_path / "offline_board.py").write_text(OFFLINE_BOARD)
    broker = make_broker(persistence=True)
    # A persistent session, so nothing published while it reconnects is lost.
    sub = subscribers(broker, ["house/kitchen/#"], client_id="e2e-offline-watcher", clean_session=False)
    started = time.monotonic()
    node = nodes(broker, board="offline_board", extra_path=str(tmp_path))
    temperature, humidity = "house/kitchen/temperature", "house/kitchen/humidity"
    assert wait_until(lambda: len(sub.on(temperature)) >= 2, 10), node.output()

    broker.stop()  # SIGTERM: mosquitto saves its sessions
    stopped = time.monotonic()
    assert wait_until(lambda: node.count("mqtt: link down") >= 1, 5), node.output()
    time.sleep(3.5)  # about 3 readings of each sensor go to the ring
    broker.start()  # same port, same persistence file
    restarted = time.monotonic()
    assert wait_until(lambda: node.count("mqtt: connected to") >= 2, 15), node.output()
    reconnected = time.monotonic()
    assert wait_until(lambda: sub.client.is_connected(), 5)
    time.sleep(2.0)  # let the drained backlog and a live reading or two arrive
    node.kill()
    ran_s = time.monotonic() - started
    assert node.proc.returncode == -9, node.output()  # it was running until killed

    for topic, driver, seed in ((temperature, "sim_temperature", 1), (humidity, "sim_humidity", 2)):
        received = sub.payloads(topic)
        count = delivered_in_order(received, expected_payloads(driver, seed, 400))
        # One reading a second, from start-up to the kill; the last may still be in flight.
        assert ran_s - 3 <= count <= ran_s + 1, (topic, count, ran_s, node.output())
        # The readings taken during the outage came as a burst once the link was back.
        after = [m[0] for m in sub.on(topic) if m[0] > restarted]
        assert after, (topic, "nothing after the restart")
        burst = [t for t in after if t - after[0] < 0.5]
        outage_s = reconnected - stopped
        assert len(burst) >= int(outage_s) - 1 >= 2, (topic, len(burst), outage_s, node.output())
        before = [m for m in sub.on(topic) if stopped < m[0] < restarted]
        assert not before, "nothing can arrive while the broker is down"


# Seed 9: a temperature series whose first readings all differ, so that
# the first node's can be told from the next one's.
FAILING_BOARD = OFFLINE_BOARD.replace('NODE = "offline-node"', 'NODE = "failing-node"').replace(
    '"seed": 1}', '"seed": 9}'
) + """
STORE = {"path": %(store)r, "flush_every": 256, "flush_s": 86400}
WATCHDOG_MS = 2000

# The fault: the node's step raises what no part of it expects, first when
# its store holds six readings it has not flushed (the broker is down: they
# wait in RAM for a flush that is not due for a day), then at once in the
# next two nodes. The third pause before a restart is 2 to 4 s.
import node.node as _node_module

_step = _node_module.Node.step
_failures = []


def _failing_step(self):
    if len(_failures) < 3 and self.store is not None and self.store.count >= 6:
        _failures.append(True)
        raise RuntimeError("injected fault %%d" %% len(_failures))
    return _step(self)


_node_module.Node.step = _failing_step
"""


def test_a_failed_node_flushes_its_store_and_restarts_with_the_watchdog_fed(make_broker, nodes, subscribers, tmp_path):
    # firmware/main.py restarts a node that raised. What the node batched in
    # RAM for its flash store goes to flash first, so the next node sends
    # it. The pause before a restart grows with each failure (0.5-1 s, 1-2
    # s, 2-4 s): it feeds the 2 s watchdog, which would reset the board in
    # the third.
    (tmp_path / "failing_board.py").write_text(FAILING_BOARD % {"store": str(tmp_path / "store")})
    broker = make_broker(persistence=True)
    sub = subscribers(broker, ["house/kitchen/#"], client_id="e2e-failing-watcher", clean_session=False)
    sub.close()  # its session stays on the broker and takes what comes meanwhile
    broker.stop()
    node = nodes(broker, board="failing_board", extra_path=str(tmp_path))
    assert wait_until(lambda: node.count("injected fault 3") >= 1, 20), node.output()
    assert node.count("node failed, restarting it") == 3, node.output()
    time.sleep(4.5)  # the third pause, and more: a watchdog starved through it resets the board
    assert node.proc.poll() is None, "reset by the watchdog:\n" + node.output()
    # Each of the three nodes after the first found the first one's readings on flash.
    assert node.count("store: 6 readings kept across the reset") == 3, node.output()
    broker.start()
    sub = subscribers(broker, ["house/kitchen/#"], client_id="e2e-failing-watcher", clean_session=False)
    temperature = "house/kitchen/temperature"
    series = expected_payloads("sim_temperature", 9, 50)
    # The first node's readings (the series from its start), then the
    # fourth's (the series again: the same seed).
    assert wait_until(lambda: sub.payloads(temperature).count(series[0]) >= 2, 20), (
        sub.payloads(temperature),
        node.output(),
    )
    received = sub.payloads(temperature)
    again = received.index(series[0], 1)
    assert again >= 3 and received[:again] == series[:again], (received, node.output())
    assert node.proc.poll() is None, node.output()


# The fault: the node's step raises MemoryError once its store holds six
# readings it has not flushed, then at once in the next node: the heap, as
# far as main.py can tell, no longer takes a node.
SHORT_OF_MEMORY_BOARD = OFFLINE_BOARD.replace('NODE = "offline-node"', 'NODE = "memory-node"') + """
STORE = {"path": %(store)r, "flush_every": 256, "flush_s": 86400}
WATCHDOG_MS = 2000
import node.node as _node_module

_step = _node_module.Node.step
_failures = []


def _failing_step(self):
    if self.store is not None and self.store.count >= 6:
        _failures.append(True)
        raise MemoryError("injected shortage %%d" %% len(_failures))
    return _step(self)


_node_module.Node.step = _failing_step
"""


def test_a_node_out_of_memory_twice_in_a_row_resets_the_board_after_flushing_its_store(make_broker, nodes, tmp_path):
    # The first MemoryError restarts the node in the same heap, as any
    # failure does; the second in a row resets the board. The readings the
    # first node batched in RAM went to flash first.
    store = str(tmp_path / "store")
    (tmp_path / "memory_board.py").write_text(SHORT_OF_MEMORY_BOARD % {"store": store})
    broker = make_broker()
    broker.stop()
    node = nodes(broker, board="memory_board", extra_path=str(tmp_path))
    assert wait_until(lambda: node.proc.poll() is not None, 30), node.output()
    output = node.output()
    assert node.count("node failed, restarting it: MemoryError('injected shortage") == 2, output
    assert node.count("store: 6 readings kept across the reset") == 1, output  # the second node found them
    assert "out of memory 2 times in a row: resetting the board" in output, output
    assert node.count("machine.reset() on the Unix port: exiting") == 1, output
    assert output.index("injected shortage 2") < output.index("resetting the board"), output


# ---- board files ---------------------------------------------------------------


def board_files():
    return sorted(
        name
        for name in os.listdir(BOARDS)
        if name.endswith(".py") and name not in ("secrets_template.py", "secrets.py")
    )


def test_there_are_board_files():
    assert "unix.py" in board_files() and len(board_files()) >= 3


@pytest.mark.parametrize("name", board_files())
def test_board_file_loads_and_every_channel_has_its_own_topic(name, monkeypatch):
    monkeypatch.delenv("MQTT_HOST", raising=False)
    monkeypatch.delenv("MQTT_PORT", raising=False)
    secrets = load_board_file(os.path.join(BOARDS, "secrets_template.py"))
    board = load_board_file(os.path.join(BOARDS, name))
    c = board_config.load(board, secrets)
    names = []
    for s in c["SENSORS"]:
        driver = driver_class(s["driver"])  # a known driver
        names += [s["prefix"] + channel for channel in driver.CHANNELS]
        if s["bus"] is None and not s["driver"].startswith("sim_") and s["driver"] != "mcu_temp":
            assert s["pin"] is not None, "%s: %s needs a pin or a bus" % (name, s["driver"])
    assert len(set(names)) == len(names), names
    # Each discovery config goes out at QoS 0 from the transmit buffer: it
    # must fit, with a long version, a MAC and a long machine string.
    device = discovery.Device(
        c["NODE"],
        c["ROOM"],
        c["PREFIX"],
        getattr(board, "MODEL", "house sensor node"),
        "v1.2.3-45-gabcdef0-dirty",
        runtime="MicroPython 1.28.0",
        machine="Raspberry Pi Pico W with RP2040",
        manufacturer="Raspberry Pi",
        mac="aa:bb:cc:dd:ee:ff" if c["WIFI"] else None,
        sleep_s=c["DEEP_SLEEP_S"],
        json_payload=c["PAYLOAD"] == "json",
        wifi=c["WIFI"] is not None,
        store=bool(c.get("STORE")),
    )
    channels = []
    for s in c["SENSORS"]:
        driver = driver_class(s["driver"])
        for k, channel in enumerate(driver.CHANNELS):
            channels.append((s["prefix"] + channel, driver.UNITS[k], driver.DEVICE_CLASSES[k], driver.DECIMALS[k], 1))
    for topic, payload in discovery.configs(device, channels):
        size = 1 + 4 + 2 + len(topic.encode()) + len(payload.encode())
        assert size <= _tx_size(c), (name, topic, size)


BREAKAGES = (
    # (text in boards/unix.py, replacement, fragments the error names)
    ('"qos": 1, "params": {"seed": 1}', '"qos": 3, "params": {"seed": 1}', ("SENSORS[0] qos", "3")),
    ('ROOM = "kitchen"', 'ROOM = "kitchen/2"', ("ROOM", "'kitchen/2'")),
    ('"keepalive_s": 30', '"keepalive_s": 30, "port": 70000', ("BROKER port", "70000")),
    (
        '{"driver": "sim_pressure", "period_s": 5',
        '{"driver": "sim_pressure", "period_s": 0',
        ("SENSORS[2] period_s", "0"),
    ),
)


@pytest.mark.parametrize("original,replacement,fragments", BREAKAGES)
def test_broken_copy_of_a_board_names_the_key(original, replacement, fragments, tmp_path, monkeypatch):
    monkeypatch.delenv("MQTT_PORT", raising=False)
    with open(os.path.join(BOARDS, "unix.py")) as f:
        text = f.read()
    assert original in text, "boards/unix.py changed: update this test"
    path = tmp_path / "broken_board.py"
    path.write_text(text.replace(original, replacement, 1))
    with pytest.raises(ValueError) as error:
        board_config.load(load_board_file(str(path)))
    for fragment in fragments:
        assert fragment in str(error.value), str(error.value)


def test_firmware_stops_with_the_reason_on_a_broken_board(tmp_path):
    # On the Unix port, as on a board: main.py prints the reason and exits 2,
    # it does not loop. No broker is needed: it fails before connecting.
    with open(os.path.join(BOARDS, "unix.py")) as f:
        text = f.read()
    (tmp_path / "broken_board.py").write_text(
        text.replace('"qos": 0, "params": {"seed": 3}', '"qos": 5, "params": {"seed": 3}')
    )
    env = run_local.node_environment("127.0.0.1", 1, "broken_board")
    env["MICROPYPATH"] += ":" + str(tmp_path)
    result = subprocess.run(
        run_local.micropython_command() + [MAIN], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "board file error" in result.stdout and "SENSORS[2] qos" in result.stdout and "5" in result.stdout, (
        result.stdout
    )


def test_firmware_stops_at_boot_on_a_driver_parameter_it_refuses(tmp_path):
    # A value only the driver can judge (spread -1): named with the sensor,
    # and a stop at boot, not "node failed, restarting it" forever.
    with open(os.path.join(BOARDS, "unix.py")) as f:
        text = f.read()
    (tmp_path / "bad_param_board.py").write_text(text.replace('"params": {"seed": 2}', '"params": {"spread": -1}'))
    env = run_local.node_environment("127.0.0.1", 1, "bad_param_board")
    env["MICROPYPATH"] += ":" + str(tmp_path)
    result = subprocess.run(
        run_local.micropython_command() + [MAIN], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "board file error: board SENSORS[1] (sim_humidity) params:" in result.stdout, result.stdout
    assert "spread and step must be >= 0" in result.stdout and "restarting" not in result.stdout, result.stdout


def test_firmware_with_a_watchdog_stops_on_a_refused_parameter_without_resetting(tmp_path):
    # The watchdog started before the node was built cannot be stopped: a
    # board that exits would reset into the same error every WATCHDOG_MS.
    # It stops in place instead, feeding the watchdog (the Unix port's fake
    # kills the process as a reset when it is not fed).
    with open(os.path.join(BOARDS, "unix.py")) as f:
        text = f.read()
    board = text.replace('"params": {"seed": 2}', '"params": {"spread": -1}') + "\nWATCHDOG_MS = 1000\n"
    (tmp_path / "bad_param_wdt_board.py").write_text(board)
    env = run_local.node_environment("127.0.0.1", 1, "bad_param_wdt_board")
    env["MICROPYPATH"] += ":" + str(tmp_path)
    try:
        result = subprocess.run(
            run_local.micropython_command() + [MAIN], env=env, cwd=ROOT, capture_output=True, text=True, timeout=4
        )
        raise AssertionError("exited (%s) within four watchdog periods:\n%s" % (result.returncode, result.stdout))
    except subprocess.TimeoutExpired as e:  # still there, as wanted; run() has ended it
        output = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
    assert "board file error: board SENSORS[1] (sim_humidity) params:" in output, output
    assert "stopped until the board file is fixed" in output, output
    assert "resetting the board" not in output and output.count("board file error") == 1, output


# ---- safe mode ------------------------------------------------------------------


def write_safe_mode_board(tmp_path):
    with open(os.path.join(BOARDS, "unix.py")) as f:
        text = f.read()
    (tmp_path / "safe_board.py").write_text(text + "WATCHDOG_MS = 5000\nSAFE_MODE_PIN = 0\n")


def test_safe_mode_pin_held_keeps_node_and_watchdog_stopped(make_broker, nodes, subscribers, tmp_path):
    """The button held just after a reset: main.py returns to the REPL (here:
    the process ends) without a watchdog and without touching the broker."""
    write_safe_mode_board(tmp_path)
    broker = make_broker()
    sub = subscribers(broker, ["house/#"])
    node = nodes(broker, board="safe_board", extra_path=str(tmp_path), env={"FAKE_PINS_LOW": "0"})
    assert node.proc.wait(timeout=10) == 0, node.output()
    node.reader.join(timeout=5)
    assert node.count("safe mode: 0 held at start-up: node and watchdog not started") == 1, node.output()
    assert node.count("machine.WDT") == 0 and node.count("mqtt:") == 0, node.output()
    time.sleep(0.5)
    assert sub.messages == []


def test_safe_mode_pin_not_held_starts_the_node_after_the_window(make_broker, nodes, subscribers, tmp_path):
    write_safe_mode_board(tmp_path)
    broker = make_broker()
    sub = subscribers(broker, ["house/kitchen/temperature"])
    node = nodes(broker, board="safe_board", extra_path=str(tmp_path), env={"FAKE_PINS_LOW": "5"})
    assert wait_until(lambda: sub.payloads("house/kitchen/temperature"), 15), node.output()
    fed = node.first("machine.WDT: first feed (timeout 5000 ms)")
    assert fed is not None and fed - node.started >= 1.0, node.output()  # it looked at the pin for a second first
    assert node.count("safe mode") == 0, node.output()


def test_node_with_a_client_certificate_publishes_through_mutual_tls(
    mutual_tls_broker, tls_files, nodes, subscribers, tmp_path
):
    """The board file names the CA, the node's certificate and its key (PEM
    files, as they sit on a board): the node gets through a broker that
    requires client certificates, and its readings reach a subscriber."""
    with open(os.path.join(BOARDS, "unix.py")) as f:
        text = f.read()
    broker = {
        "host": "127.0.0.1",
        "port": 8883,
        "tls": True,
        "ca": tls_files["ca"],
        "cert": tls_files["client_cert"],
        "key": tls_files["client_key"],
    }
    (tmp_path / "mtls_board.py").write_text(text + "BROKER = %r\n" % broker)
    sub = subscribers(mutual_tls_broker, ["house/kitchen/temperature"])
    # MQTT_PORT wins over the board's port: the broker's TLS listener.
    node = nodes(
        mutual_tls_broker,
        board="mtls_board",
        extra_path=str(tmp_path),
        env={"MQTT_PORT": str(mutual_tls_broker.tls_port)},
    )
    assert wait_until(lambda: sub.payloads("house/kitchen/temperature"), 15), node.output()
    assert node.count("TLS handshake with 127.0.0.1:%d" % mutual_tls_broker.tls_port) >= 1, node.output()
