"""A node that loses power while the broker is unreachable keeps its
readings in the flash store: SIGKILLed (a power cut) at random points while
buffering, restarted, its readings arrive with the time they were taken, in
order, each once (the broker was never reached, so nothing was half-sent)."""

import json
import random
import time

from test_node_e2e import NodeProcess, Subscriber, wait_until

STORE_BOARD = """
MODEL = "power cut test"
ROOM = "kitchen"
NODE = "powercut-node"
BROKER = {"host": "127.0.0.1", "port": 1883, "keepalive_s": 10}
# A constant value per life (center, no walk), so each reading says which life took it.
SENSORS = [{"driver": "sim_temperature", "period_s": 1, "qos": 1, "params": {"center": %d, "spread": 0, "step": 0}}]
BUFFER = 64
DIAGNOSTICS_S = 0
DISCOVERY = False
PAYLOAD = "json"
STORE = {"path": %r, "capacity": 256, "flush_every": 1, "flush_s": 1}
"""


def write_board(tmp_path, life):
    (tmp_path / "store_board.py").write_text(STORE_BOARD % (life * 100, str(tmp_path / "store")))


def test_readings_survive_power_cuts_while_offline(make_broker, tmp_path):
    broker = make_broker(persistence=True)
    broker.stop()  # unreachable from the start: every reading goes to flash
    rng = random.Random(7)
    offline_started = time.time()
    nodes = []
    try:
        for life in range(1, 5):  # four power cuts at random points
            write_board(tmp_path, life)
            node = NodeProcess(broker, board="store_board", extra_path=str(tmp_path))
            nodes.append(node)
            time.sleep(rng.uniform(1.2, 2.5))
            node.kill()
        offline_ended = time.time()
        broker.start()
        sub = Subscriber(broker, ["house/kitchen/temperature"], client_id="powercut-watcher")
        write_board(tmp_path, 5)
        node = NodeProcess(broker, board="store_board", extra_path=str(tmp_path))
        nodes.append(node)
        topic = "house/kitchen/temperature"

        def readings():
            return [(json.loads(p)["v"], json.loads(p)["t"]) for p in sub.payloads(topic)]

        # Back online: the stored readings come first, then live ones (life 5).
        assert wait_until(lambda: any(v == 5 for v, _ in readings()), 15), node.output()
        node.kill()
    finally:
        for n in nodes:
            n.kill()
    stored = [(v, t) for v, t in readings() if v != 5]
    sub.close()
    lives = [v for v, _ in stored]
    # Every life that ran left readings, one a second from its start.
    assert sorted(set(lives)) == [1, 2, 3, 4], stored
    assert len(stored) >= (offline_ended - offline_started) / 2, stored
    # In the order they were taken, none twice (the broker was never reached).
    assert lives == sorted(lives), stored
    assert [t for _, t in stored] == sorted(t for _, t in stored), stored
    assert len(set(stored)) == len(stored), stored
    first = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(offline_started - 1))
    assert stored[0][1] >= first, (stored, first)
