"""A node that loses power while the broker is unreachable keeps its
readings in the flash store: SIGKILLed (a power cut) at random points while
buffering, restarted, its readings arrive with the time they were taken, in
order, each once (the broker was never reached, so nothing was half-sent).
SIGKILLed at random points while it replays them, slowly, through a proxy,
nothing stored is lost and the order holds; a reading acknowledged since the
store last wrote its marker may arrive twice, as QoS 1 allows."""

import json
import random
import time

from faults.proxy import FaultProxy
from sensors import make as make_sensor
from test_node_e2e import NodeProcess, Subscriber, wait_until

# A wide walk around a centre per life: a value says which life took it and,
# by its place in that life's series, which reading it was.
LIFE_CENTER = 100000
WALK = {"spread": 9000, "step": 2000}


def replay_sensor(life, k):
    return {"seed": 1 + k, "center": life * LIFE_CENTER, **WALK}


def series(life, k, count):
    """The payload values sensor k of that life reads, in order."""
    sensor = make_sensor("sim_temperature", None, **replay_sensor(life, k))
    values, out = [0], []
    for _ in range(count):
        sensor.read(values)
        out.append(values[0])
    return out


STORE_BOARD = """
MODEL = "power cut test"
ROOM = "kitchen"
NODE = "powercut-node"
BROKER = {"host": "127.0.0.1", "port": 1883, "keepalive_s": 10}
# A walk around a centre per life (see LIFE_CENTER): each reading's value says which it was.
SENSORS = [{"driver": "sim_temperature", "period_s": 1, "qos": 1, "params": %r}]
BUFFER = 64
DIAGNOSTICS_S = 0
DISCOVERY = False
PAYLOAD = "json"
STORE = {"path": %r, "capacity": 256, "flush_every": 1, "flush_s": 1}
"""


def write_board(tmp_path, life):
    (tmp_path / "store_board.py").write_text(STORE_BOARD % (replay_sensor(life, 0), str(tmp_path / "store")))


def test_readings_survive_power_cuts_while_offline(make_broker, tmp_path):
    broker = make_broker(persistence=True)
    broker.stop()  # unreachable from the start: every reading goes to flash
    rng = random.Random(7)
    offline_started = time.time()
    nodes = []
    last = 5
    try:
        for life in range(1, last):  # four power cuts at random points
            write_board(tmp_path, life)
            node = NodeProcess(broker, board="store_board", extra_path=str(tmp_path))
            nodes.append(node)
            time.sleep(rng.uniform(1.2, 2.5))
            node.kill()
        offline_ended = time.time()
        broker.start()
        sub = Subscriber(broker, ["house/kitchen/temperature"], client_id="powercut-watcher")
        write_board(tmp_path, last)
        node = NodeProcess(broker, board="store_board", extra_path=str(tmp_path))
        nodes.append(node)
        topic = "house/kitchen/temperature"

        def readings():
            return [(round(json.loads(p)["v"] * 100), json.loads(p)["t"]) for p in sub.payloads(topic)]

        # Back online: the stored readings come first, then live ones.
        assert wait_until(lambda: any(v // LIFE_CENTER == last for v, _ in readings()), 15), node.output()
        node.kill()
    finally:
        for n in nodes:
            n.kill()
    # Which reading each value is: (life, index in that life's series).
    index = {}
    for life in range(1, last + 1):
        for i, value in enumerate(series(life, 0, 60)):
            assert value not in index, "the walk repeats a value: pick another seed"
            index[value] = (life, i)
    stored = [(index[v], t) for v, t in readings() if index[v][0] != last]
    sub.close()
    lives = [life for (life, _), _ in stored]
    # Every life that ran left readings, one a second from its start.
    assert sorted(set(lives)) == [1, 2, 3, 4], stored
    assert len(stored) >= (offline_ended - offline_started) / 2, stored
    # In the order they were taken, each once (the broker was never reached),
    # none in the middle of a life lost: each life's readings are a prefix of
    # its series (only the one being written at a cut may be missing).
    assert lives == sorted(lives), stored
    assert [t for _, t in stored] == sorted(t for _, t in stored), stored
    for life in range(1, last):
        got = [i for (lf, i), _ in stored if lf == life]
        assert got == list(range(len(got))), (life, got)
    # Each carries the time it was taken, not the time it was sent (after offline_ended).
    first = iso(offline_started - 1)
    latest = iso(offline_ended + 1)
    assert stored[0][1] >= first and stored[-1][1] <= latest, (stored, first, latest)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# ---- power cuts while replaying -----------------------------------------------

# Three sensors a second, one message in flight, PUBACKs held back 250 ms: the
# replay goes at about the rate new readings join it, so until the delay is
# lifted the backlog never empties and every reading goes through the store.
REPLAY_BOARD = """
MODEL = "power cut test"
ROOM = "kitchen"
NODE = "replay-node"
BROKER = {"host": "127.0.0.1", "port": 1883, "keepalive_s": 10}
SENSORS = [
%s
]
BUFFER = 64
DIAGNOSTICS_S = 0
DISCOVERY = False
PAYLOAD = "json"
INFLIGHT = 1
STORE = {"path": %r, "capacity": 1024, "flush_every": 1, "flush_s": 1}
"""
REPLAY_SENSORS = ("a_", "b_", "c_")
REPLAY_TOPICS = ["house/kitchen/%stemperature" % prefix for prefix in REPLAY_SENSORS]
ACK_DELAY_MS = 250
FLUSH_S = 1


def write_replay_board(tmp_path, life):
    sensors = ",\n".join(
        '    {"driver": "sim_temperature", "prefix": %r, "period_s": 1, "qos": 1, "params": %r}'
        % (prefix, replay_sensor(life, k))
        for k, prefix in enumerate(REPLAY_SENSORS)
    )
    (tmp_path / "replay_board.py").write_text(REPLAY_BOARD % (sensors, str(tmp_path / "store")))


def test_readings_survive_power_cuts_while_replaying(make_broker, tmp_path):
    broker = make_broker(persistence=True)
    broker.stop()
    rng = random.Random(11)
    kills = 3
    arrivals = []  # (topic, value in hundredths, time) as the subscriber saw them
    nodes = []
    with FaultProxy(broker.port) as proxy:
        env = {"MQTT_PORT": str(proxy.port)}
        try:
            # Life 1: offline for 10 s, about 30 readings into the store.
            write_replay_board(tmp_path, 1)
            nodes.append(NodeProcess(broker, board="replay_board", extra_path=str(tmp_path), env=env))
            time.sleep(10)
            nodes[-1].kill()
            life1_ended = time.time()
            broker.start()
            sub = Subscriber(broker, REPLAY_TOPICS, client_id="replay-watcher")
            proxy.delay_ms(ACK_DELAY_MS, "down")
            # Lives 2..4: replaying, cut at a random moment after the connect.
            for life in range(2, 2 + kills):
                write_replay_board(tmp_path, life)
                node = NodeProcess(broker, board="replay_board", extra_path=str(tmp_path), env=env)
                nodes.append(node)
                assert wait_until(lambda n=node: n.count("mqtt: connected") > 0, 15), node.output()
                time.sleep(rng.uniform(0.5, 3.0))
                node.kill()
            # The last life: the delay lifted, the backlog drains and live readings follow.
            proxy.delay_ms(0, "down")
            last = 2 + kills
            write_replay_board(tmp_path, last)
            node = NodeProcess(broker, board="replay_board", extra_path=str(tmp_path), env=env)
            nodes.append(node)

            def live_from_every_sensor():
                return all(
                    any(round(json.loads(p)["v"] * 100) // LIFE_CENTER == last for p in sub.payloads(t))
                    for t in REPLAY_TOPICS
                )

            assert wait_until(live_from_every_sensor, 30), node.output()
            node.kill()
        finally:
            for n in nodes:
                n.kill()
    for m in sub.messages:
        payload = json.loads(m[2])
        arrivals.append((m[1], round(payload["v"] * 100), payload["t"]))
    sub.close()
    outputs = "\n---\n".join(n.output() for n in nodes)
    # Every cut came in the middle of a replay: each next life found readings left.
    kept = [n.first("readings kept across the reset") for n in nodes[1:]]
    assert None not in kept, outputs

    # Which reading each arrival is: (life, sensor k, index in that life's series).
    index = {}
    for life in range(1, last + 1):
        for k, topic in enumerate(REPLAY_TOPICS):
            for i, value in enumerate(series(life, k, 60)):
                assert (topic, value) not in index, "the walk repeats a value: pick another seed"
                index[(topic, value)] = (life, k, i)
    seen, firsts, duplicates = set(), [], 0
    for topic, value, taken in arrivals:
        reading = index[(topic, value)]
        if reading in seen:
            duplicates += 1
        else:
            seen.add(reading)
            firsts.append((reading, taken))

    # Every life's readings arrive as a prefix of its series: nothing in the
    # middle lost (only the reading being written at a cut may be).
    for life in range(1, last):
        for k in range(len(REPLAY_SENSORS)):
            got = [i for (lf, kk, i), _ in firsts if (lf, kk) == (life, k)]
            assert got == list(range(len(got))), (life, k, got, outputs)
            assert len(got) >= (8 if life == 1 else 1), (life, k, got, outputs)
    # In the order taken: lives in turn, each sensor's readings in series order.
    lives = [reading[0] for reading, _ in firsts]
    assert lives == sorted(lives), (lives, outputs)
    # Life 1's readings carry the time they were taken, before the broker was back.
    life1_times = [taken for (reading, taken) in firsts if reading[0] == 1]
    assert max(life1_times) <= iso(life1_ended + 1), (life1_times, iso(life1_ended))
    # QoS 1 duplicates only from a cut: at most what was acknowledged since the
    # marker (written at least every FLUSH_S, at most 1000 / ACK_DELAY_MS acks a
    # second) plus the one in flight, per cut.
    per_cut = FLUSH_S * 1000 // ACK_DELAY_MS + 2
    print("replay: %d readings, %d duplicates after %d cuts" % (len(firsts), duplicates, kills))
    assert duplicates <= kills * per_cut, (duplicates, outputs)
