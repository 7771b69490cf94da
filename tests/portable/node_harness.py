# What the node tests share: a node built from a board dict in-process,
# against the harness's mosquitto, and a small subscriber to watch it. The
# node tests are split over several modules so that each MicroPython process
# loads only its own tests' bytecode: they run under a Pico W-sized heap.
from compat import ticks_add, ticks_diff, ticks_ms
from inbox import Inbox
from mqtt.client import MQTTClient
from node import config
from node.fixed import format_fixed
from node.node import Node
from sensors import make as make_sensor
from support import broker_address, poll_until, unique_id


class FakeBoard:
    def __init__(self, settings):
        for key in settings:
            setattr(self, key, settings[key])


def sim(driver, seed, qos, period_s=60):
    return {"driver": driver, "qos": qos, "period_s": period_s, "params": {"seed": seed}}


SENSORS = [
    sim("sim_temperature", 11, 1),
    sim("sim_humidity", 12, 0),
    sim("sim_illuminance", 13, 1),
]


class Logs:
    def __init__(self):
        self.lines = []

    def __call__(self, line):
        self.lines.append(line)

    def having(self, text):
        return [line for line in self.lines if text in line]


def board_settings(room, name, host, port, sensors=SENSORS, **settings):
    """A board file's settings, as node.config loads them, for a test's node."""
    board = {
        "ROOM": room,
        "NODE": name,
        "BROKER": {"host": host, "port": port, "keepalive_s": 30, "clean_session": True},
        "SENSORS": sensors,
        "DISCOVERY": False,  # retained configs would outlive the test on the shared broker
        "DIAGNOSTICS_S": 0,
        # Small buffers: the node, a subscriber and lib/ share a Pico W-sized heap.
        "INFLIGHT": 4,
        "MAX_PACKET": 256,
        "BUFFER": 32,
    }
    for key in settings:
        board[key] = settings[key]
    return config.load(FakeBoard(board))


def make_node(tag, sensors=SENSORS, reset=None, **settings):
    host, port = broker_address()
    board = board_settings(unique_id("room" + tag), unique_id("node" + tag), host, port, sensors, **settings)
    logs = Logs()
    node = Node(board, "test board", log=logs, reset=reset)
    return node, logs


def subscriber(tag, topic):
    # Small, so that it and the node fit a board-sized heap together.
    host, port = broker_address()
    client = MQTTClient(unique_id("sub" + tag), host, port, inflight_max=2, max_packet=128, tx_size=128, rx_size=256)
    inbox = Inbox(client)
    client.connect()
    client.subscribe(topic, 1)
    assert poll_until(client, lambda: inbox.granted), "no SUBACK"
    assert inbox.granted == [(1,)]
    return client, inbox


def room_filter(node):
    return "%s/%s/#" % (node.config["PREFIX"], node.config["ROOM"])


def reading_topic(node, name):
    return "%s/%s/%s" % (node.config["PREFIX"], node.config["ROOM"], name)


def run_until(node, clients, condition, timeout_ms=5000):
    """Runs the node's loop (and polls the other clients) until condition()."""
    deadline = ticks_add(ticks_ms(), timeout_ms)
    while not condition():
        if ticks_diff(deadline, ticks_ms()) <= 0:
            return False
        node.step()
        node.client.poll(5)
        for client in clients:
            client.poll(5)
    return True


def expected_payloads(driver, seed, count):
    sensor = make_sensor(driver, None, seed=seed)
    values = [0]
    buf = bytearray(24)
    out = []
    for _ in range(count):
        sensor.start()
        sensor.read(values)
        n = format_fixed(buf, 0, values[0], sensor.DECIMALS[0])
        out.append(bytes(buf[:n]))
    return out


def finish(node, clients):
    """Clean up: clear the retained status, disconnect everything."""
    try:
        if clients and clients[0].connected:
            clients[0].publish(node.status_topic, b"", 1, True)
            clients[0].wait_for_acks(2000)
    finally:
        node.client.disconnect()
        for client in clients:
            client.disconnect()


def send_command(commander, node, key, value):
    commander.publish(node.command_prefix + key, value, 1)


class Rebooted(Exception):
    pass


def reset():
    raise Rebooted()  # machine.reset() does not return


def temperature_text(value):
    buf = bytearray(24)
    n = format_fixed(buf, 0, value, 2)
    return bytes(buf[:n])


def drain_all(node, clients, timeout_ms=5000):
    def drained():
        node.drain_ring()
        return node.ring.count == 0 and not node.client.session.inflight_count()

    deadline = ticks_add(ticks_ms(), timeout_ms)
    while not drained():
        if ticks_diff(deadline, ticks_ms()) <= 0:
            return False
        node.client.poll(5)
        for client in clients:
            client.poll(5)
    return True
