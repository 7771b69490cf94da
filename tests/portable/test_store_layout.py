# The board's sensor list changes while readings wait in the flash store
# (reordered, a sensor added or taken away, twice before they drain): each
# waiting reading still comes back under its own sensor's channel, or not
# at all when that sensor is gone, and the readings taken after the change
# under theirs.
import os

from node.store import FlashStore
from support import allocated_by, fresh_dir, heap_locked, remove_dir


def open_store(path, names, **kwargs):
    settings = {"capacity": 64, "flush_every": 4, "segment_bytes": 256}
    settings.update(kwargs)
    return FlashStore(path, channels=len(names), names=names, **settings)


def take(store, names, readings):
    """Append (name, value) readings under names, and put them on flash."""
    for name, value in readings:
        store.append(names.index(name), value)
    store.flush()


def replay(store, names, ack=False):
    """[(name, value)] as the node would send them: QoS 1, left unacknowledged
    (the store on disk stays as it was) unless ack."""
    out = []
    packet_id = 0
    while True:
        seq = store.oldest()
        if seq < 0:
            return out
        out.append((names[store.channel], store.value))
        packet_id += 1
        store.sent(seq, packet_id)
        if ack:
            store.acked(packet_id)


A = ["temperature", "humidity", "pressure"]
BEFORE = [("temperature", 1), ("humidity", 2), ("pressure", 3), ("temperature", 4)]


def backlog(tag, readings=None, **kwargs):
    """A store folder holding readings (BEFORE) on flash, written under A."""
    path = fresh_dir(tag)
    store = open_store(path, A, **kwargs)
    take(store, A, BEFORE if readings is None else readings)
    store.close()
    return path


def test_reordered_sensors_get_their_own_waiting_readings():
    path = backlog("layout-order")
    b = ["pressure", "temperature", "humidity"]
    store = open_store(path, b)
    take(store, b, [("humidity", 5)])
    assert replay(store, b) == BEFORE + [("humidity", 5)]
    assert store.orphaned == 0 and store.torn == 0
    store.close()
    remove_dir(path)


def test_a_sensor_taken_away_drops_its_readings_and_says_so():
    path = backlog("layout-gone")
    b = ["pressure", "temperature"]
    store = open_store(path, b)
    assert store.orphaned == 1 and store.torn == 0
    assert store.count == 3
    assert replay(store, b) == [("temperature", 1), ("pressure", 3), ("temperature", 4)]
    assert store.torn == 0
    store.close()
    remove_dir(path)


def test_a_sensor_added_in_front_and_a_second_change_before_the_backlog_drains():
    path = backlog("layout-twice")
    b = ["light", "temperature", "humidity", "pressure"]
    store = open_store(path, b)
    take(store, b, [("light", 10), ("pressure", 11)])
    store.close()
    c = ["humidity", "light", "pressure"]  # temperature gone, the rest reordered
    store = open_store(path, c)
    take(store, c, [("humidity", 20)])
    assert store.orphaned == 2
    assert replay(store, c) == [("humidity", 2), ("pressure", 3), ("light", 10), ("pressure", 11), ("humidity", 20)]
    store.close()
    remove_dir(path)


def test_once_the_backlog_is_acknowledged_the_earlier_list_is_forgotten():
    path = backlog("layout-forget")
    b = list(reversed(A))
    store = open_store(path, b)
    assert replay(store, b, ack=True) == BEFORE
    store.close()
    store = open_store(path, b)
    assert store._era_end == []
    take(store, b, [("pressure", 7)])
    assert replay(store, b) == [("pressure", 7)]
    store.close()
    with open(path + "/channels") as f:
        text = f.read()
    assert '"eras": []' in text, text
    remove_dir(path)


def test_a_reset_before_the_new_list_is_in_place_changes_nothing():
    # The new list is written beside the old one and renamed over it: a
    # reset before the rename leaves the old one, and a half-written new one.
    path = backlog("layout-reset")
    with open(path + "/channels.new", "w") as f:
        f.write('{"names": ["pres')
    b = ["humidity", "pressure", "temperature"]
    store = open_store(path, b)
    assert replay(store, b) == BEFORE
    store.close()
    remove_dir(path)


def test_latest_keeps_each_sensors_newest_value_across_a_reorder():
    path = backlog("layout-latest", BEFORE + [("humidity", 5)], policy="latest", capacity=16, flush_every=2)
    b = ["humidity", "pressure", "temperature"]
    store = open_store(path, b, policy="latest", capacity=16, flush_every=2)
    assert sorted(replay(store, b)) == [("humidity", 5), ("pressure", 3), ("temperature", 4)]
    store.close()
    remove_dir(path)


def test_a_store_from_before_the_list_was_kept_reads_as_unchanged():
    path = fresh_dir("layout-legacy")
    store = FlashStore(path, capacity=64, flush_every=4, segment_bytes=256, channels=3)
    take(store, A, BEFORE)
    store.close()
    store = open_store(path, A)
    assert replay(store, A) == BEFORE
    store.close()
    assert "channels" in os.listdir(path)
    remove_dir(path)


def test_replay_of_readings_from_an_earlier_list_allocates_nothing():
    path = backlog("layout-alloc")
    b = ["pressure", "temperature", "humidity"]
    store = open_store(path, b)

    def step():
        seq = store.oldest()
        store.sent(seq, 0)
        return store.channel

    assert allocated_by(step) == 0  # the first reading: temperature's
    assert b[store.channel] == "temperature"
    assert b[heap_locked(step)] == "humidity"
    store.close()
    remove_dir(path)


def test_a_store_reformatted_for_another_size_forgets_the_earlier_lists():
    # Its seqs start again from 1: an earlier list kept would map the new
    # readings as if they were the old ones.
    path = backlog("layout-reformat")
    b = ["pressure", "temperature", "humidity"]
    store = open_store(path, b)
    store.close()
    store = open_store(path, b, capacity=32)  # another geometry: reformatted, empty
    assert store.count == 0 and store._era_end == []
    take(store, b, [("pressure", 1), ("temperature", 2), ("humidity", 3)])
    store.close()
    store = open_store(path, b, capacity=32)
    assert replay(store, b) == [("pressure", 1), ("temperature", 2), ("humidity", 3)]
    store.close()
    remove_dir(path)


def test_a_full_store_drops_orphans_without_losing_count_of_the_rest():
    # A sensor taken away while its readings wait, then offline until the
    # store wraps over them: what it holds and hands out stays in step.
    path = backlog("layout-wrap", [("humidity", i) if i % 2 else ("temperature", i) for i in range(40)])
    b = ["temperature", "pressure"]
    store = open_store(path, b)
    assert store.orphaned == 20 and store.count == 20
    take(store, b, [("pressure", 100 + i) for i in range(60)])  # 64 slots: wraps over the backlog
    held = store.count
    sent = replay(store, b, ack=True)
    assert len(sent) == held and store.count == 0 and store.unsent == 0, (held, len(sent), store.count)
    assert sent[-1] == ("pressure", 159) and all(name != "humidity" for name, _ in sent), sent
    store.close()
    remove_dir(path)
