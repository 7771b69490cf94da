# The flash-backed store (node.store): order, wrap-around, policies, torn
# writes, acknowledgements that survive a reset, where flushes write, and no
# allocation on the hot path. Runs on CPython, on the Unix port (also with
# a board-sized heap) and on the 32-bit runtime, whose 31-bit small ints and
# 2**30 tick period are a board's. Each test works in its own directory
# under $TMPDIR or /tmp (the 32-bit runtime's in-memory /tmp: no environment).
import os
import struct
from binascii import crc32

from compat import ticks_add
from flaky_flash import FlakyFlash
from node.store import FlashStore
from support import allocated_by, fresh_dir, heap_locked, remove_dir

SMALL_HEAP = True

RECORD = 16
READING = "<IIiBBH"  # seq, taken, value, channel, kind, check (the module docstring's layout)
MARKER = "<IIIBBH"  # generation, tail seq, capacity, kind, log2(segment records), check
KIND_READING = 0x54
KIND_MARKER = 0x4D
SMALL_SEGMENTS = ("seg0", "seg1", "seg2", "seg3")


# The i-th reading of the format and allocation tests: both signs of value,
# a `taken` in 2026. A function per field, as a tuple would allocate.
def channel_of(i):
    return i & 7


def value_of(i):
    return i * 40503 - 1000000


def taken_of(i):
    return 70000000 + i * 600


def fields(i):
    return channel_of(i), value_of(i), taken_of(i)


def small(path, **kwargs):
    """4 segment files of 16 slots: wraps and changes file often."""
    settings = {"capacity": 64, "flush_every": 4, "segment_bytes": 256, "channels": 8}
    settings.update(kwargs)
    return FlashStore(path, **settings)


def drain(store, packet_id=0):
    """[(seq, channel, value, taken)] handed out in order; sent with packet_id
    (0: QoS 0, done at once; else packet_id, packet_id + 1, ... unacked)."""
    out = []
    while True:
        seq = store.oldest()
        if seq < 0:
            return out
        out.append((seq, store.channel, store.value, store.taken))
        store.sent(seq, packet_id + len(out) - 1 if packet_id else 0)


def replay_fields(store):
    """replay()'s (channel, value) pairs."""
    return [(channel, value) for _, channel, value, _ in drain(store, packet_id=1)]


def replay(store):
    """The values held, handed out as QoS 1 and never acknowledged, so the
    store on disk is left as it was."""
    return [value for _, _, value, _ in drain(store, packet_id=1)]


def read_file(name):
    with open(name, "rb") as f:
        return bytearray(f.read())


def write_file(name, data):
    with open(name, "wb") as f:
        f.write(data)


class RecordingFile:
    """A file that remembers each write (name, offset, length) and flush."""

    def __init__(self, log, name, f):
        self.log = log
        self.name = name
        self.f = f
        self.pos = 0

    def seek(self, offset, whence=0):
        self.pos = self.f.seek(offset, whence)
        return self.pos

    def write(self, data):
        n = self.f.write(data)
        self.log.append(("write", self.name, self.pos, len(data)))
        self.pos += len(data)
        return n

    def readinto(self, buf):
        n = self.f.readinto(buf)
        self.pos += n or 0
        return n

    def flush(self):
        self.f.flush()
        self.log.append(("flush", self.name, 0, 0))

    def close(self):
        self.f.close()


def recording_opener(log):
    def opener(name, mode):
        return RecordingFile(log, name.split("/")[-1], open(name, mode))

    return opener


# ---- order and reopening ---------------------------------------------------


def test_readings_replay_in_append_order_with_their_fields():
    path = fresh_dir("order")
    store = small(path)
    readings = [(0, 2150, 1700000000), (3, -40, 0), (7, 2147483647, 4294967295), (1, -2147483648, 1)]
    seqs = [store.append(c, v, t) for c, v, t in readings]
    assert seqs == [1, 2, 3, 4]
    assert store.count == 4 and store.unsent == 4
    out = drain(store)
    assert [(c, v, t) for _, c, v, t in out] == readings
    assert [s for s, _, _, _ in out] == seqs
    assert store.count == 0 and store.oldest() == -1
    store.close()
    remove_dir(path)


def test_reopen_after_close_reproduces_the_readings():
    path = fresh_dir("reopen")
    store = small(path)
    for i in range(10):
        store.append(i % 8, i * 100, 1000 + i)
    store.close()
    again = small(path)
    assert again.recovered == 10 and again.count == 10 and again.torn == 0
    assert drain(again) == [(i + 1, i % 8, i * 100, 1000 + i) for i in range(10)]
    assert again.append(0, 1) == 11  # sequence numbers go on
    again.close()
    remove_dir(path)


def test_reset_loses_only_what_was_not_flushed():
    path = fresh_dir("reset")
    store = small(path, flush_every=4)
    for i in range(6):
        store.append(0, i)
    assert store.durable_seq == 4  # one batch of 4 written, 2 in RAM
    # No close(): a reset. The next boot sees what reached the file.
    after = small(path, flush_every=4)
    assert [v for _, _, v, _ in drain(after)] == [0, 1, 2, 3]
    after.close()
    remove_dir(path)


# ---- wrap-around and the "all" policy --------------------------------------


def test_full_store_drops_the_oldest_and_counts_it():
    path = fresh_dir("full")
    store = small(path)  # 64 slots
    for i in range(100):
        store.append(i % 8, i)
    assert store.count == 64 and store.dropped == 36
    store.close()
    again = small(path)
    out = drain(again)
    assert [v for _, _, v, _ in out] == list(range(36, 100))
    assert [s for s, _, _, _ in out] == list(range(37, 101))
    again.close()
    remove_dir(path)


def test_wraps_round_robin_over_the_segment_files():
    path = fresh_dir("wrap")
    log = []
    store = small(path, opener=recording_opener(log))
    del log[:]
    for i in range(200):  # three laps and more
        store.append(0, i)
    writes = [(name, offset, n) for kind, name, offset, n in log if kind == "write"]
    # Every slot is written once per lap, in order: seg0, seg1, seg2, seg3, seg0 ...
    slots = []
    for name, offset, n in writes:
        first = int(name[3:]) * 16 + offset // RECORD
        slots.extend(range(first, first + n // RECORD))
    assert store.durable_seq == 199  # the last batch still in RAM
    assert slots == [s % 64 for s in range(1, 200)]
    store.close()
    remove_dir(path)


def test_consecutive_flushes_never_write_the_same_place():
    path = fresh_dir("wear")
    log = []
    store = small(path, opener=recording_opener(log))
    del log[:]
    previous = None
    for i in range(150):
        store.append(i % 8, i)
        if i % 3 == 0:
            store.flush()  # partial batches too: they must not rewrite their slots
    spans = []
    pending = []
    for kind, name, offset, n in log:
        if kind == "write" and name.startswith("seg"):
            pending.append((int(name[3:]) * 16 * RECORD + offset, n))
        elif kind == "flush" and pending:
            spans.append(pending)
            pending = []
    assert len(spans) > 40
    for span in spans:
        assert len(span) == 1, "one write per flush, got %r" % (span,)
        start, n = span[0]
        if previous is not None:
            p_start, p_n = previous
            # The next flush starts where the previous ended (mod the ring): never the same bytes.
            assert start == (p_start + p_n) % (64 * RECORD), (previous, span)
            assert start + n <= p_start or start >= p_start + p_n
        previous = span[0]
    store.close()
    remove_dir(path)


def test_acknowledgement_markers_rotate_over_their_slots():
    path = fresh_dir("markers")
    log = []
    store = small(path, commit_every=4, opener=recording_opener(log))
    del log[:]
    for _ in range(12):
        for i in range(8):
            store.append(0, i)
        store.flush()
        drain(store)  # QoS 0: done; empty, so a marker each round
    offsets = [offset for kind, name, offset, n in log if kind == "write" and name == "marker"]
    assert len(offsets) >= 12
    for i in range(1, len(offsets)):
        assert offsets[i] != offsets[i - 1]
    assert sorted(set(offsets)) == [i * RECORD for i in range(8)]
    store.close()
    remove_dir(path)


# ---- the "latest" policy ---------------------------------------------------


def test_latest_keeps_only_the_newest_value_per_channel():
    path = fresh_dir("latest")
    store = small(path, policy="latest", channels=3)
    for i in range(10):
        store.append(i % 3, i)
    assert store.count == 3 and store.dropped == 7
    store.close()
    again = small(path, policy="latest", channels=3)
    assert again.count == 3
    again.close()
    again = small(path, policy="latest", channels=3)
    out = drain(again)
    # Replayed in the order they were appended: 7 (ch 1), 8 (ch 2), 9 (ch 0).
    assert [(c, v) for _, c, v, _ in out] == [(1, 7), (2, 8), (0, 9)]
    again.close()
    remove_dir(path)


def test_latest_copies_a_live_value_forward_when_the_log_wraps():
    path = fresh_dir("latest-wrap")
    store = small(path, policy="latest", channels=2)  # 64 slots
    store.append(1, 111)  # channel 1 reads once, then only channel 0
    for i in range(300):
        store.append(0, i)
    assert store.relocated >= 1
    assert store.count == 2
    store.close()
    again = small(path, policy="latest", channels=2)
    assert sorted((c, v) for _, c, v, _ in drain(again)) == [(0, 299), (1, 111)]
    again.close()
    remove_dir(path)


# ---- torn writes -----------------------------------------------------------


def test_a_corrupt_byte_anywhere_in_the_last_record_drops_only_it():
    path = fresh_dir("corrupt")
    store = small(path)
    for i in range(6):
        store.append(1, 1000 + i)
    store.close()
    name = path + "/seg0"
    good = read_file(name)
    last = 6 * RECORD  # seq 6 lives in slot 6
    for i in range(RECORD):
        bad = bytearray(good)
        bad[last + i] ^= 0xFF
        write_file(name, bad)
        again = small(path)
        assert replay(again) == [1000, 1001, 1002, 1003, 1004], "byte %d" % i
        again.close()
        write_file(name, good)
    remove_dir(path)


def crc32_of_slot(data, at):
    """binascii.crc32 of the 16-byte slot at data[at] with its check field
    zero: what the first firmware wrote, and verified, the check from."""
    record = bytearray(data[at : at + RECORD])
    record[14] = record[15] = 0
    return crc32(record)


def set_check(data, at):
    check = crc32_of_slot(data, at) & 0xFFFF
    data[at + 14], data[at + 15] = check & 0xFF, check >> 8


def rewrite_record(data, slot, kind, taken=None):
    """The record in slot as another firmware would have written it: its kind
    (and `taken`) changed, with a check that holds."""
    at = slot * RECORD
    if taken is not None:
        for i in range(4):
            data[at + 4 + i] = (taken >> (8 * i)) & 0xFF
    data[at + 13] = kind
    set_check(data, at)


def written_slots(path):
    """[(data, offset)] of every slot of small()'s files that was ever
    written (an unwritten slot is zeros)."""
    slots = []
    for name in SMALL_SEGMENTS + ("marker",):
        data = read_file(path + "/" + name)
        for at in range(0, len(data), RECORD):
            if data[at : at + RECORD] != bytes(RECORD):
                slots.append((data, at))
    return slots


def checks_of_2_30_or_more(path):
    """How many written slots have a CRC-32 of 2**30 or more (a long int on
    a 32-bit board); fails if any slot's check is not binascii's."""
    high = 0
    for data, at in written_slots(path):
        crc = crc32_of_slot(data, at)
        assert data[at + 14] | data[at + 15] << 8 == crc & 0xFFFF, "slot check is not binascii.crc32's low bits"
        if crc >= 1 << 30:
            high += 1
    return high


def write_first_firmware_store(path, n):
    """small()'s geometry as the firmware before this one wrote it, checks
    from binascii.crc32: readings fields(1) .. fields(n) as seqs 1 .. n,
    and one marker (generation 1, nothing acknowledged)."""
    os.mkdir(path)
    segments = [bytearray(16 * RECORD) for _ in SMALL_SEGMENTS]
    for seq in range(1, n + 1):
        channel, value, taken = fields(seq)
        data, at = segments[seq % 64 // 16], seq % 16 * RECORD
        struct.pack_into(READING, data, at, seq, taken, value, channel, KIND_READING, 0)
        set_check(data, at)
    marker = bytearray(8 * RECORD)
    struct.pack_into(MARKER, marker, RECORD, 1, 1, 64, KIND_MARKER, 4, 0)  # generation 1 lives in slot 1
    set_check(marker, RECORD)
    for i in range(len(SMALL_SEGMENTS)):
        write_file(path + "/" + SMALL_SEGMENTS[i], segments[i])
    write_file(path + "/marker", marker)


def test_checks_are_binascii_crc32s_low_bits_so_both_firmwares_read_each_others_stores():
    # This firmware computes the check without binascii (see node.store._check);
    # the bits must be the same, or an update would read every stored reading as torn.
    path = fresh_dir("format-new")
    store = small(path, commit_every=4)
    for i in range(1, 41):
        channel, value, taken = fields(i)
        store.append(channel, value, taken)
    drain(store, packet_id=1)
    for packet_id in range(1, 9):
        store.acked(packet_id)  # two markers
    store.close()
    assert len(written_slots(path)) == 40 + 3  # the readings, the markers (one at the first start)
    assert checks_of_2_30_or_more(path) >= 20
    remove_dir(path)

    path = fresh_dir("format-old")
    write_first_firmware_store(path, 40)
    assert checks_of_2_30_or_more(path) >= 20
    old = small(path)
    assert old.count == 40 and old.torn == 0
    out = drain(old)
    assert [s for s, _, _, _ in out] == list(range(1, 41))
    assert [(c, v, t) for _, c, v, t in out] == [fields(i) for i in range(1, 41)]
    old.close()
    remove_dir(path)


def test_first_format_records_replay_with_their_times_converted():
    # Kind 'R': `taken` in Unix seconds (the first builds) or already since
    # 2024 (later builds with the same kind); 0 for a reading without a time.
    path = fresh_dir("format")
    store = small(path)
    for i in range(6):
        store.append(1, 1000 + i, 0)
    store.close()
    name = path + "/seg0"
    data = read_file(name)
    unix_2024 = 1704067200
    rewrite_record(data, 1, 0x52, unix_2024 + 86400)  # Unix seconds: a day into 2024
    rewrite_record(data, 2, 0x52, 86400 * 2)  # seconds since 2024 already
    rewrite_record(data, 3, 0x52, 0)  # no time
    rewrite_record(data, 4, 0x99)  # a kind this firmware does not know
    write_file(name, data)
    again = small(path)
    got = [(value, taken) for _, _, value, taken in drain(again, packet_id=1)]
    assert got == [(1000, 86400), (1001, 86400 * 2), (1002, 0), (1004, 0), (1005, 0)], got
    again.close()
    remove_dir(path)


def test_a_torn_write_is_skipped_at_every_offset():
    # A write cut short leaves the new bytes up to some offset and the old
    # ones after it; here the old ones are the previous lap's record.
    path = fresh_dir("torn")
    store = small(path, capacity=32, flush_every=1, segment_bytes=512)
    for i in range(39):
        store.append(2, i)
    name = path + "/seg0"
    before = read_file(name)
    store.append(2, 39)  # seq 40, slot 8: over seq 8
    store.close()
    after = read_file(name)
    slot = 40 % 32 * RECORD
    for cut in range(RECORD + 1):
        torn = bytearray(after)
        torn[slot + cut : slot + RECORD] = before[slot + cut : slot + RECORD]
        write_file(name, torn)
        again = small(path, capacity=32, flush_every=1, segment_bytes=512)
        values = replay(again)
        if torn[slot : slot + RECORD] == after[slot : slot + RECORD]:
            assert values == list(range(8, 40)), cut  # the write completed
        elif cut == 0:
            assert values == list(range(7, 39)), cut  # nothing written: seq 8 still there
        else:
            assert values == list(range(8, 39)), cut  # torn: skipped
        # Sequence numbers go on from the newest intact record, never reused below it.
        assert again.append(2, 99) == (41 if values[-1] == 39 else 40)
        again.close()
    remove_dir(path)


def test_a_truncated_segment_file_keeps_the_records_before_the_cut():
    path = fresh_dir("truncated")
    store = small(path)
    for i in range(8):
        store.append(0, i)
    store.close()
    name = path + "/seg0"
    good = read_file(name)
    for cut in range(7 * RECORD, 9 * RECORD):  # inside seq 7 and seq 8
        write_file(name, good[:cut])
        again = small(path)
        assert replay(again) == list(range(min(8, (cut - RECORD) // RECORD))), cut
        again.close()
    remove_dir(path)


# ---- acknowledgements ------------------------------------------------------


def test_unacknowledged_readings_come_back_after_a_reset():
    path = fresh_dir("unacked")
    store = small(path)
    for i in range(8):
        store.append(0, i)
    store.flush()
    assert len(drain(store, packet_id=100)) == 8  # QoS 1, no PUBACK yet
    assert store.count == 8 and store.unsent == 0
    again = small(path)  # reset: the client's in-flight table is gone too
    assert [v for _, _, v, _ in drain(again)] == list(range(8))
    again.close()
    remove_dir(path)


def test_acknowledged_readings_do_not_come_back_once_committed():
    path = fresh_dir("acked")
    store = small(path, commit_every=4)
    for i in range(10):
        store.append(0, i)
    store.flush()
    drain(store, packet_id=100)
    for packet_id in (100, 101, 102, 103, 104):
        assert store.acked(packet_id)
    assert store.committed_seq == 4  # a marker after 4 acks; the 5th waits
    again = small(path)  # reset
    # 5 was acknowledged but not yet committed: it may come back (QoS 1 allows a duplicate).
    assert [v for _, _, v, _ in drain(again)] == [4, 5, 6, 7, 8, 9]
    again.close()
    store.flush()
    again = small(path)
    assert [v for _, _, v, _ in drain(again)] == [5, 6, 7, 8, 9]
    again.close()
    remove_dir(path)


def test_pubacks_out_of_order_free_readings_only_behind_the_oldest():
    path = fresh_dir("order-acks")
    store = small(path, commit_every=1)
    for i in range(5):
        store.append(0, i)
    store.flush()
    drain(store, packet_id=10)  # packet ids 10..14
    assert store.acked(12) and store.acked(11)
    assert store.count == 5 and store.committed_seq == 0  # 10 still outstanding
    assert not store.acked(99)  # a packet the store did not send (status, discovery)
    assert store.acked(10)
    assert store.count == 2 and store.committed_seq == 3
    assert store.acked(14) and store.acked(13)
    assert store.count == 0 and store.committed_seq == 5
    store.close()
    again = small(path)
    assert again.count == 0 and again.oldest() == -1
    again.close()
    remove_dir(path)


def test_the_window_bounds_readings_awaiting_acks():
    path = fresh_dir("window")
    store = small(path, window=3)
    for i in range(6):
        store.append(0, i)
    assert len(drain(store, packet_id=1)) == 3
    assert store.oldest() == -1  # three unacknowledged: wait
    store.acked(1)
    assert store.oldest() == 4
    store.close()
    remove_dir(path)


def test_rewind_hands_out_unacknowledged_readings_again():
    path = fresh_dir("rewind")
    store = small(path)
    for i in range(4):
        store.append(0, i)
    drain(store, packet_id=1)
    store.acked(1)
    store.rewind()
    assert [v for _, _, v, _ in drain(store)] == [1, 2, 3]
    store.close()
    remove_dir(path)


def test_a_short_outage_drained_before_a_flush_writes_nothing():
    path = fresh_dir("short")
    store = small(path, flush_every=8)
    writes = store.flushes + store.commits
    for i in range(5):
        store.append(0, i)
    drain(store, packet_id=1)
    for packet_id in range(1, 6):
        store.acked(packet_id)
    store.flush()
    assert store.count == 0
    assert store.flushes + store.commits == writes
    store.close()
    remove_dir(path)


# ---- the write-rate bound ---------------------------------------------------


def test_poll_flushes_flush_ms_after_the_first_pending_reading():
    path = fresh_dir("poll")
    store = small(path, flush_every=8, flush_ms=1000)
    assert store.poll(0) == -1
    store.append(0, 1)
    assert store.poll(100) == 1000  # armed now
    store.append(0, 2)
    assert store.poll(600) == 500
    assert store.durable_seq == 0
    assert store.poll(1100) == -1
    assert store.durable_seq == 2
    assert store.poll(5000) == -1
    store.close()
    remove_dir(path)


def test_poll_flushes_on_time_across_the_tick_wrap():
    # A reading every 100 ms, a poll every 50 ms, flush_ms=1000: the first
    # pending reading arms a flush 1000 ms later, so flushes come at 1000,
    # 2100, 3200 and 4300 ms. Started at several distances before the wrap
    # (2**30 ms on a board), it falls right after an arming, just before
    # and at a due time, while nothing is pending, at an arming, and
    # between arming and due: the flushes must keep the same times (not
    # late, a stall; not early or repeated, a burst) and lose nothing.
    for before_wrap in (1, 999, 1000, 1050, 1100, 1550, 4299):
        path = fresh_dir("poll-wrap")
        store = small(path, capacity=256, flush_every=64, segment_bytes=1024, flush_ms=1000)
        start = ticks_add(0, -before_wrap)
        flushed_at = []
        for t in range(0, 5000, 50):
            if t % 100 == 0:
                store.append(0, t)
            flushes = store.flushes
            left = store.poll(ticks_add(start, t))
            assert left == -1 or 0 < left <= 1000, (before_wrap, t, left)
            if store.flushes != flushes:
                flushed_at.append(t)
        assert flushed_at == [1000, 2100, 3200, 4300], (before_wrap, flushed_at)
        assert store.durable_seq == 44  # the six readings since 4400 wait for 5300
        store.close()
        again = small(path, capacity=256, flush_every=64, segment_bytes=1024)
        assert [v for _, _, v, _ in drain(again)] == list(range(0, 5000, 100)), before_wrap
        again.close()
        remove_dir(path)


def test_the_longest_flush_ms_a_board_accepts_arms_across_the_wrap():
    # poll() arms with ticks_add(now, flush_ms); a board refuses 2**29 ms.
    longest = (1 << 29) - 1
    path = fresh_dir("poll-longest")
    store = small(path, flush_ms=longest)
    store.append(0, 1)
    now = ticks_add(0, -10)
    assert store.poll(now) == longest
    assert store.poll(ticks_add(now, 20)) == longest - 20  # past the wrap
    due = ticks_add(now, longest)
    assert store.poll(ticks_add(due, -1)) == 1
    assert store.durable_seq == 0
    assert store.poll(due) == -1
    assert store.durable_seq == 1
    store.close()
    remove_dir(path)


def test_a_batch_is_written_when_flush_every_readings_wait():
    path = fresh_dir("batch")
    store = small(path, flush_every=4)
    flushes = store.flushes
    for i in range(3):
        store.append(0, i)
    assert store.flushes == flushes and store.durable_seq == 0
    store.append(0, 3)
    assert store.flushes == flushes + 1 and store.durable_seq == 4
    store.close()
    remove_dir(path)


# ---- a failing flash ----------------------------------------------------------
# append() raises only for a reading it did not keep (the node's RAM ring
# keeps that one); a reading in the RAM batch whose write failed is kept,
# and the write is retried by the next append or flush.


def refused(fn, *args):
    """True if fn(*args) raised OSError."""
    try:
        fn(*args)
    except OSError:
        return True
    return False


def test_a_failed_batch_write_keeps_its_readings_and_append_returns():
    path = fresh_dir("fail-kept")
    store = small(path, flush_every=4)
    flash = FlakyFlash(store)
    for i in range(3):
        store.append(0, i)
    flash.failing = True
    flushes = store.flushes
    assert store.append(0, 3) == 4  # the batch of 4 ends; its write fails; no raise
    assert flash.refused == 1 and store.flushes == flushes and store.durable_seq == 0
    assert store.count == 4 and store.unsent == 4
    assert isinstance(store.write_error, OSError)
    flash.failing = False
    assert store.append(0, 4) == 5  # the failed write is retried first
    assert store.durable_seq == 4 and store.flushes == flushes + 1
    store.flush()
    again = small(path)  # what reached the files, in order, once each
    assert replay(again) == [0, 1, 2, 3, 4]
    again.close()
    assert [v for _, _, v, _ in drain(store)] == [0, 1, 2, 3, 4]
    assert store.count == 0 and store.unsent == 0
    store.close()
    remove_dir(path)


def test_a_failed_retry_raises_and_keeps_and_drops_nothing():
    path = fresh_dir("fail-retry")
    store = small(path, flush_every=4)  # 64 slots
    flash = FlakyFlash(store)
    for i in range(64):
        store.append(0, i)
    store.flush()
    assert store.count == 64 and store.durable_seq == 64 and store.dropped == 0
    flash.failing = True
    for i in range(64, 68):  # full: each drops the oldest; the 4th's batch write fails
        assert store.append(0, i) == i + 1
    assert store.count == 64 and store.dropped == 4 and store.durable_seq == 64
    for i in (68, 69):  # the retry fails: not kept, and nothing dropped for it
        assert refused(store.append, 0, i)
        assert store.count == 64 and store.unsent == 64 and store.dropped == 4
    assert refused(store.flush)
    flash.failing = False
    assert store.append(0, 70) == 69  # the refused readings took no seq
    store.flush()
    assert store.durable_seq == 69 and store.dropped == 5
    again = small(path, window=64)
    assert replay(again) == list(range(5, 68)) + [70]
    again.close()
    store.close()
    remove_dir(path)


def test_latest_counts_only_the_readings_it_kept():
    path = fresh_dir("fail-latest")
    store = small(path, policy="latest", channels=2, flush_every=4)
    flash = FlakyFlash(store)
    store.append(0, 10)
    store.append(1, 20)
    store.append(0, 11)  # supersedes 10
    assert store.unsent == 2 and store.dropped == 1
    flash.failing = True
    assert store.append(1, 21) == 4  # supersedes 20; the batch write fails, 21 is kept
    assert store.unsent == 2 and store.dropped == 2
    assert refused(store.append, 0, 12)  # not kept: 11 stays channel 0's newest
    assert refused(store.append, 1, 22)
    assert store.unsent == 2 and store.dropped == 2 and store.count == 2
    flash.failing = False
    assert store.append(0, 13) == 5  # supersedes 11
    assert store.unsent == 2 and store.dropped == 3
    assert [(c, v) for _, c, v, _ in drain(store, packet_id=1)] == [(1, 21), (0, 13)]
    assert store.unsent == 0 and store.oldest() == -1
    assert store.acked(1) and store.acked(2)
    assert store.count == 0 and store.unsent == 0
    store.append(1, 23)
    assert store.unsent == 1
    assert [(c, v) for _, c, v, _ in drain(store)] == [(1, 23)]
    assert store.count == 0 and store.unsent == 0
    store.close()
    remove_dir(path)


def test_latest_copies_live_values_forward_through_a_failing_flash():
    # Channels 1 to 3 read once. When the log wraps, their values are copied
    # forward while the flash fails: the copies end a batch whose write
    # fails, and the next copy waits for its retry, in its old slot.
    path = fresh_dir("fail-relocate")
    store = small(path, policy="latest", channels=4)  # 64 slots, batches of 4
    flash = FlakyFlash(store)
    store.append(0, 0)
    for channel in (1, 2, 3):
        store.append(channel, 100 + channel)
    for i in range(1, 61):
        store.append(0, i)  # seqs 5 to 64: the log is full
    flash.failing = True
    assert store.append(0, 61) == 65
    assert refused(store.append, 0, 62)  # 101, 102 copied forward, the write fails; 103 waits
    assert store.relocated == 2 and store.unsent == 4 and store.count == 4
    assert refused(store.append, 0, 63)
    assert store.relocated == 2 and store.unsent == 4 and store.count == 4
    flash.failing = False
    assert store.append(0, 64) == 69  # the write retried, 103 copied forward
    assert store.relocated == 3 and store.unsent == 4 and store.count == 4
    store.flush()
    want = [(0, 64), (1, 101), (2, 102), (3, 103)]
    again = small(path, policy="latest", channels=4)
    assert sorted(replay_fields(again)) == want
    again.close()
    assert sorted((c, v) for _, c, v, _ in drain(store, packet_id=1)) == want
    for packet_id in range(1, 5):
        assert store.acked(packet_id)
    assert store.count == 0 and store.unsent == 0
    store.close()
    remove_dir(path)


def test_what_append_kept_through_a_flash_failing_on_and_off_is_held_once_in_order():
    # The flash fails for 7 readings in every 21: batches fail, retries fail
    # and succeed, the log wraps (and "latest" copies a live value forward
    # while it fails). A reading append returned for is held; one it raised
    # for is not.
    for policy in ("all", "latest"):
        path = fresh_dir("fail-" + policy)
        store = small(path, policy=policy, channels=2)  # 64 slots, batches of 4
        flash = FlakyFlash(store)
        kept = []
        for i in range(200):
            flash.failing = i // 7 % 3 == 1
            channel = 1 if i % 90 == 0 else 0
            try:
                store.append(channel, i)
            except OSError:
                continue
            kept.append((channel, i))
        assert flash.refused > 10 and 100 < len(kept) < 200, (policy, flash.refused, len(kept))
        flash.failing = False
        store.flush()
        if policy == "all":
            assert store.count + store.dropped == len(kept), policy
            want = kept[len(kept) - store.count :]
        else:
            assert store.relocated > 0
            want = [(c, max(v for k, v in kept if k == c)) for c in (0, 1)]
        assert store.unsent == len(want), policy
        again = small(path, policy=policy, channels=2, window=64)  # what reached the files
        assert sorted(replay_fields(again)) == sorted(want), policy
        again.close()
        got = []
        for packet_id in range(1, 100):  # sent as QoS 1 and acknowledged one by one
            seq = store.oldest()
            if seq < 0:
                break
            got.append((store.channel, store.value))
            store.sent(seq, packet_id)
            assert store.acked(packet_id)
        if policy == "all":
            assert got == want
        else:
            assert sorted(got) == sorted(want)
        assert store.count == 0 and store.unsent == 0, policy
        store.close()
        remove_dir(path)


# ---- setup errors and geometry ----------------------------------------------


def test_bad_settings_raise_value_error_naming_them():
    path = fresh_dir("bad")
    for kwargs, word in (
        ({"policy": "newest"}, "policy"),
        ({"capacity": 6, "flush_every": 4}, "capacity"),
        ({"segment_bytes": 100}, "segment_bytes"),
        ({"policy": "latest", "channels": 0}, "latest"),
        ({"window": 0}, "window"),
        ({"flush_ms": 0}, "flush_ms"),
        ({"flush_ms": 1 << 29}, "flush_ms"),  # ticks_add on a board refuses it
    ):
        try:
            small(path, **kwargs)
        except ValueError as e:
            assert word in str(e), str(e)
        else:
            raise AssertionError("no ValueError for %r" % (kwargs,))
    store = small(path)
    for args, word in (((8, 1), "channel"), ((0, 1 << 31), "value"), ((0, 1, -1), "taken")):
        try:
            store.append(*args)
        except ValueError as e:
            assert word in str(e), str(e)
        else:
            raise AssertionError("no ValueError for %r" % (args,))
    store.close()
    remove_dir(path)


def test_a_store_of_another_size_starts_empty():
    path = fresh_dir("geometry")
    store = small(path, capacity=64)
    for i in range(10):
        store.append(0, i)
    store.close()
    other = small(path, capacity=32)
    assert other.count == 0 and other.oldest() == -1
    other.close()
    remove_dir(path)


# ---- no allocation ------------------------------------------------------------


def test_append_replay_and_acks_allocate_nothing():
    path = fresh_dir("alloc")
    store = small(path, commit_every=8)

    def outage_and_drain():
        for i in range(100):  # batches, segment changes, wrap-around, drops
            store.append(i & 7, i - 50, i)
        packet_id = 1
        while True:
            seq = store.oldest()
            if seq < 0:
                break
            store.sent(seq, packet_id)
            store.acked(packet_id)
            packet_id += 1
        store.poll(0)

    outage_and_drain()  # warm up
    assert allocated_by(outage_and_drain) == 0
    heap_locked(outage_and_drain)
    store.close()
    remove_dir(path)


def append_readings(store, first, n):
    for i in range(first, first + n):
        store.append(channel_of(i), value_of(i), taken_of(i))


def replay_and_ack(store, n, wrong):
    """Hands out, sends as QoS 1 and acknowledges n readings; counts in
    wrong[0] those whose fields are not fields(seq)."""
    for packet_id in range(1, n + 1):
        seq = store.oldest()
        if store.channel != channel_of(seq) or store.value != value_of(seq) or store.taken != taken_of(seq):
            wrong[0] += 1
        store.sent(seq, packet_id)
        store.acked(packet_id)


def test_appends_whose_checks_are_2_30_or_more_allocate_nothing():
    # On a 32-bit board binascii.crc32 returns a long int (2**30 or more)
    # for three records in four, and each operation on it allocates.
    # Appends, with the batch writes they trigger.
    path = fresh_dir("alloc-append")
    store = small(path, commit_every=8)
    allocated = allocated_by(append_readings, store, 1, 24)
    assert allocated == 0, "24 appends allocated %d bytes" % allocated
    heap_locked(append_readings, store, 25, 24)
    store.close()
    # Not vacuous: most of these records' CRC-32s are >= 2**30 (and every
    # check is binascii's).
    assert checks_of_2_30_or_more(path) >= 24
    remove_dir(path)


def test_replaying_checks_of_2_30_or_more_and_negative_values_allocates_nothing():
    # Replay from flash after a reset: each record's check is verified (a
    # CRC-32 >= 2**30 is a long int on a board), and a negative value's u32
    # is >= 2**31. Handed out, sent as QoS 1, acknowledged, with markers.
    path = fresh_dir("alloc-replay")
    write_first_firmware_store(path, 48)
    assert checks_of_2_30_or_more(path) >= 24  # not vacuous
    store = small(path, commit_every=8)
    assert store.count == 48
    wrong = [0]
    allocated = allocated_by(replay_and_ack, store, 24, wrong)
    assert allocated == 0, "24 replayed records allocated %d bytes" % allocated
    heap_locked(replay_and_ack, store, 24, wrong)
    assert wrong[0] == 0 and store.count == 0
    store.close()
    remove_dir(path)


class _Draining:
    """What Node.drain_ring uses of a node: its store, its ring, the link."""

    def __init__(self, store, ring):
        self.store = store
        self.ring = ring
        self.sent = []

    def _can_send(self, index):
        return True

    def _send(self, index, value, taken):
        self.sent.append(value)
        return len(self.sent)  # QoS 1 packet ids 1, 2, ...: awaiting their acks

    def _store_failed(self, error):
        raise AssertionError(error)


def test_a_node_sends_the_rings_newer_readings_only_after_the_stores():
    # The store's window is full (its readings await acks), more wait in it,
    # and the RAM ring holds newer ones (the store failed for a while): the
    # ring's wait too, or they would overtake the store's.
    from node.node import Node
    from node.ring import Ring

    path = fresh_dir("drainorder")
    store = small(path, window=2)
    for i in range(4):
        store.append(0, i)
    ring = Ring(4)
    ring.push(0, 100, 0)
    node = _Draining(store, ring)
    Node.drain_ring(node)
    assert node.sent == [0, 1], node.sent
    store.acked(1)
    store.acked(2)
    Node.drain_ring(node)
    assert node.sent[:4] == [0, 1, 2, 3], node.sent
    store.close()
    remove_dir(path)
