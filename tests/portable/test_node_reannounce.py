# Home Assistant's restart: the node announces again with its last readings
# (lib/node/announce.py), against the harness's mosquitto.
#
# Not under the Pico W heap (nor is test_node_announce): on the 64-bit Unix
# port's 160K stand-in for it, this second announce, after a first one and
# a running node, had no margin (MemoryError allocating 536 bytes in a clean
# clone, passing in another checkout whose paths were shorter). A 32-bit
# board needs about half of that heap; making the announce leaner is open.
from node_harness import expected_payloads, finish, make_node, reading_topic, run_until
from test_node_announce import (
    ENTITIES,
    SENSORS,
    Watcher,
    announced,
    connected_and_announced,
    discovery_filter,
    left_behind,
    node_filter,
)

NEEDS_NETWORK = True  # a broker or sockets: not on the 32-bit runtime


def test_home_assistant_online_announces_again_with_the_last_readings():
    node, logs = make_node("o", SENSORS, DISCOVERY=True)
    temperature = reading_topic(node, "temperature")
    connected_and_announced(node, logs)
    watcher = Watcher("o", [discovery_filter(node), node_filter(node)])
    try:
        assert run_until(node, [watcher.client], lambda: len(watcher.configs()) == ENTITIES)
        before = len(watcher.messages)
        # Home Assistant's birth message after its restart.
        watcher.client.publish("homeassistant/status", b"online", 0)
        assert run_until(node, [watcher.client], announced(logs, "Home Assistant online")), logs.lines
        assert run_until(node, [watcher.client], lambda: watcher.on(temperature))
        fresh = watcher.messages[before:]
        assert len([m for m in fresh if m[0].startswith("homeassistant/")]) == ENTITIES
        # The last reading again (the period is 60 s: no new one was taken).
        first = expected_payloads("sim_temperature", 41, 1)[0]
        assert [(m[1], m[2]) for m in watcher.on(temperature)] == [(first, False)]
        humidity = reading_topic(node, "humidity")
        assert run_until(node, [watcher.client], lambda: node.published == 4 and watcher.on(humidity))
    finally:
        watcher.clear_retained(left_behind(node, watcher))
        finish(node, [watcher.client])
