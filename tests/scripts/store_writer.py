# Drives a node.store.FlashStore for tests/test_store_powercut.py, which
# kills it (SIGKILL) at random points. Runs on the Unix port (MICROPYPATH=lib)
# and on CPython (PYTHONPATH=lib). Every line it prints is a claim the test
# checks against what a later process finds in the store.
#
#   store_writer.py write DIR LIFE COUNT
#       appends COUNT readings, channel LIFE % 8, value LIFE * 100000 + k:
#         A <value>              before appending it (an intent)
#         D <seq> <value>        once the store reports it durable (flushed)
#   store_writer.py drain DIR SEED
#       replays as QoS 1, acknowledging up to 3 in flight in a random order:
#         S <seq> <value>        handed to the "client"
#         K <seq>                its PUBACK is given to the store (printed just before)
#         C <seq>                the store reports everything up to seq
#                                acknowledged on flash (will not come back)
#   store_writer.py dump DIR
#       hands out every reading held without acknowledging any (the store
#       on disk is not changed):
#         R <seq> <channel> <value>
#
# Settings are small so that a run wraps, changes files and writes markers often.
import sys

from compat import sleep_ms, ticks_ms
from node.store import FlashStore

SETTINGS = {
    "capacity": 256,
    "segment_bytes": 1024,  # 4 files of 64 records
    "flush_every": 4,
    "flush_ms": 5,
    "commit_every": 3,
    "channels": 8,
}


def open_store(path, window=8):
    return FlashStore(path, window=window, **SETTINGS)


def write(path, life, count):
    store = open_store(path)
    reported = store.durable_seq
    values = {}
    for k in range(count):
        value = life * 100000 + k
        print("A", value)
        values[store.append(life % 8, value)] = value
        store.poll(ticks_ms())
        while reported < store.durable_seq:
            reported += 1
            if reported in values:
                print("D", reported, values[reported])
        if k % 8 == 7:
            sleep_ms(1)
    store.flush()
    while reported < store.durable_seq:
        reported += 1
        print("D", reported, values[reported])
    print("END")


class Random:
    # A small LCG: the Unix port's random module may be missing on a board build.
    def __init__(self, seed):
        self.state = seed or 1

    def below(self, n):
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.state >> 8) % n


def drain(path, seed):
    store = open_store(path)
    rng = Random(seed)
    inflight = []  # [packet_id, seq]
    packet_id = 0
    committed = store.committed_seq
    sent = 0
    while True:
        seq = store.oldest()
        if seq >= 0 and len(inflight) < 3:
            packet_id += 1
            print("S", seq, store.value)
            store.sent(seq, packet_id)
            inflight.append([packet_id, seq])
        elif inflight:
            acked = inflight.pop(rng.below(len(inflight)))
            print("K", acked[1])  # before: a kill in between must not hide an ack
            store.acked(acked[0])
        else:
            break
        store.poll(ticks_ms())
        if store.committed_seq != committed:
            committed = store.committed_seq
            print("C", committed)
        sent += 1
        if sent % 4 == 0:
            sleep_ms(1)
    store.flush()
    if store.committed_seq != committed:
        print("C", store.committed_seq)
    print("END")


def dump(path):
    store = open_store(path, window=SETTINGS["capacity"])  # all of it unacknowledged at once
    packet_id = 0
    while True:
        seq = store.oldest()
        if seq < 0:
            break
        print("R", seq, store.channel, store.value)
        packet_id += 1
        store.sent(seq, packet_id)  # QoS 1, never acknowledged: nothing is consumed
    print("END")


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "write":
        write(path, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "drain":
        drain(path, int(sys.argv[3]))
    elif mode == "dump":
        dump(path)
    else:
        raise ValueError("mode must be write, drain or dump, got %r" % (mode,))


main()
