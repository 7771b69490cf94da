# A broker that takes only the client ids 3.1.1 section 3.1.3.1 obliges it
# to (1 to 23 of 0-9, a-z, A-Z) refuses a node named 'esp32-living-room'
# with CONNACK 2: the node connects on its next try under a strict id
# derived from its name, says so, and publishes.
from memory_broker import MemoryBroker
from mqtt.client import MQTTClient
from node.node import Node
from node.strict_id import _crc32, strict_client_id
from node_harness import Logs, board_settings, sim

STRICT = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def is_strict(client_id):
    return 0 < len(client_id) <= 23 and all(ord(c) in STRICT for c in client_id)


def test_strict_ids_keep_letters_and_digits_and_tell_names_apart():
    names = [
        "esp32-living-room",
        "esp32_living-room",
        "esp32livingroom-",
        "a" * 24,
        "a" * 25,
        "kitchen_node_upstairs_2",
    ]
    ids = [strict_client_id(name) for name in names]
    for i, name in enumerate(names):
        strict = ids[i]
        assert is_strict(strict), (name, strict)
        assert strict.startswith("".join(c for c in name if c not in "-_")[:16]), (name, strict)
    assert len(set(ids)) == len(ids), ids  # a house's nodes must not take over each other's sessions
    assert strict_client_id("esp32-living-room") == ids[0]  # the same name, the same id, every boot


def test_the_checksum_is_crc32_whatever_the_firmware_has():
    # The same id on every build, with or without binascii.crc32.
    assert strict_client_id("esp32-living-room") == "esp32livingroom06j3ds7"  # crc32 394867591 in base 36
    assert _crc32(b"esp32-living-room") == 394867591 and _crc32(b"") == 0


def test_a_name_that_is_strict_already_is_kept():
    assert strict_client_id("pico4") is None
    assert strict_client_id("a" * 23) is None


def node_on(broker, name, logs):
    sensors = [sim("sim_temperature", 41, 1, period_s=1)]
    board = board_settings("kitchen", name, "broker.invalid", 1883, sensors, BUFFER=8)
    client = MQTTClient(
        name, "broker.invalid", inflight_max=4, reconnect_min_ms=10, reconnect_max_ms=20, transport=broker.transport
    )
    return Node(board, "test board", client=client, log=logs)


def run_until_published(node, broker, cycles=400):
    for _ in range(cycles):
        node.run(cycles=1)
        if broker.received[3]:  # a PUBLISH
            return True
    return False


def test_a_node_refused_for_its_name_connects_under_a_strict_id_and_publishes():
    broker = MemoryBroker(strict_client_ids=True)
    logs = Logs()
    node = node_on(broker, "esp32-living-room", logs)
    assert run_until_published(node, broker), logs.lines
    assert broker.refused == 1, logs.lines
    assert broker.client_id == strict_client_id("esp32-living-room").encode()
    assert node.client.connected
    told = logs.having("connecting as")
    assert len(told) == 1, logs.lines
    assert "esp32-living-room" in told[0] and strict_client_id("esp32-living-room") in told[0], told
    assert broker.last_publish()[0] == b"house/kitchen/temperature"


def test_a_broker_that_takes_the_name_sees_it_unchanged():
    broker = MemoryBroker()
    logs = Logs()
    node = node_on(broker, "esp32-living-room", logs)
    assert run_until_published(node, broker), logs.lines
    assert broker.refused == 0
    assert broker.client_id == b"esp32-living-room"
    assert not logs.having("connecting as")


def test_a_strict_name_refused_all_the_same_is_kept_and_the_log_says_why():
    # A broker with its own list of refused ids: no id derived from the name
    # would get past it, so the node keeps its name and keeps trying.
    broker = MemoryBroker(strict_client_ids=True, refused_ids=(b"pico4",))
    logs = Logs()
    node = node_on(broker, "pico4", logs)
    for _ in range(200):
        node.run(cycles=1)
        if broker.refused >= 3:
            break
    assert broker.refused >= 3, logs.lines
    assert broker.client_id == b"pico4"
    assert not node.client.connected
    assert len(logs.having("check its settings")) == broker.refused, logs.lines
