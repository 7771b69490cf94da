# Readings that must survive a reset or a power cut while the broker is
# unreachable wait here, on the board's filesystem, and go out in order when
# the link is back. node.ring.Ring is the RAM-only version of the same idea.
"""A flash-backed log of readings: FlashStore.

On disk (one directory, all files created full-size at first start, so a
full filesystem fails at boot and not in the middle of an outage):

  <path>/seg0 .. seg<S-1>   the log: S segment files of `segment_bytes`
                            (default 4096, one LittleFS block) holding
                            `capacity` 16-byte record slots in all.
  <path>/marker             8 slots of 16 bytes: "everything before seq T is
                            acknowledged", written round-robin; the newest
                            valid one wins at boot.
  <path>/channels           with `names`: the channel names records are
                            written under, and earlier lists still in use
                            (node.store_layout), so that a reading waiting
                            from before the board's sensor list changed
                            goes out under its own sensor, or not at all.

A reading record, little-endian, 16 bytes:

  0  u32 seq       1, 2, 3 ... ; it lives in slot seq % capacity, so a slot
                   holding any other seq (an older lap, garbage) is not it
  4  u32 taken     seconds since 2024-01-01 UTC (node.timestamp.now_s()),
                   0 if unknown
  8  i32 value     fixed point, as the driver gave it
  12 u8  channel   the node's channel index (in the list of its time:
                   see <path>/channels)
  13 u8  kind      0x54 'T' (a marker is 0x4D 'M'). The kind is also the
                   format's version: a change to the layout or meaning of
                   a record takes a new kind, so a store left by other
                   firmware reads as unreadable slots, never as wrong
                   readings. 'R', the first format, is still read: its
                   `taken` was Unix seconds, then (in later builds, with
                   the same kind) seconds since 2024; a value past 2024 in
                   Unix seconds tells the two apart until 2077.
  14 u16 check     low 16 bits of CRC-32 (the IEEE one, as binascii.crc32
                   computes it) over the 16 bytes with this field zero;
                   computed here from a table in 16-bit halves (see _check)

A torn write (reset while writing) leaves a slot whose check, kind or seq
does not match: it is skipped and counted in `torn`. Recovery needs no
header that is rewritten in place: the newest valid seq is the head, the
newest marker the tail.

Why segment files of one block and not one big file: LittleFS is
copy-on-write and a CTZ file is a backwards skip-list, so a write in the
middle of a file rewrites every block from there to the end of the file
(littlefs issues #27, #515). A 4 KB file costs one block copy per sync, a
64 KB file up to sixteen.

Write rate and what a power cut loses. Records are collected in a RAM
buffer and written as one write() and one flush() (a LittleFS sync; an
fsync on the Unix port) when `flush_every` are waiting, when the next
record would start a new segment file, or `flush_ms` after the first of
them arrived (poll()). What a power cut loses is what is in that buffer:
at most `flush_every` readings or `flush_ms` of them. Call flush() before
a reset, before deep sleep and when the link goes down. Each flush writes
the slots after the previous one, round-robin over the files; no slot is
written twice in one lap. Acknowledgements are persisted the same way, a
marker every `commit_every` acknowledged records, when the store runs
empty, or at `flush_ms`; a marker is skipped when nothing acknowledged was
ever on flash (a short outage drained before its first flush costs no
write at all). A reset during replay resends at most what was acknowledged
since the last marker: duplicates, which QoS 1 allows, never a loss.

A write that fails (a full filesystem, a failing flash) leaves its
records in the RAM buffer, held and handed out as before, and the next
append or flush tries it again. append() raises OSError only for a reading
it did not keep, which the caller then keeps elsewhere: when the buffer
waits for that retry and it fails again (nothing has changed then), or
when a marker due as room is made for it cannot be written.

Flash lifetime, a reading every 10 s, offline all the time (the worst case;
online the store is not touched), defaults flush_every=32, flush_ms=120000:

  readings per day            86400 / 10                =  8640
  flushes per day             one per 120 s (32 readings would take 320 s)
                              86400 / 120               =   720
  erases per flush (LittleFS) the 4 KB segment block is copied to a fresh
                              block (1 erase) + a metadata commit of tens
                              of bytes (about 1/50 of a block)   ~ 1.05
  erases per day              720 * 1.05                ~   756
  LittleFS spreads erases over every free block (dynamic wear levelling;
  MicroPython sets block_cycles=100, so even metadata pairs move).
  ESP32, 2 MiB vfs partition = 512 blocks, ~480 free:
    10k cycles:  480 * 10000 / 756  =   6349 days  ~  17 years
    100k cycles: 480 * 100000 / 756 =  63492 days  ~ 170 years
  Pico W, 848 KiB filesystem = 212 blocks, ~200 free, 100k cycles:
                 200 * 100000 / 756 =  26455 days  ~  72 years
  For comparison, one write+sync per reading: 8640 * 1.05 = 9072 erases a
  day, 480 * 10000 / 9072 = 529 days (1.4 years) at 10k cycles; on a raw
  flash region without wear levelling, rewriting one block per reading,
  10000 / 8640 = 1.2 days. Without the filesystem's levelling (FAT on raw
  flash) this store's own round-robin still spreads the 720 writes a day
  over its S segments: S=8, 100k cycles: 8 * 100000 / 720 = 3 years; FAT's
  directory entry is rewritten on each flush though, so use LittleFS.
  At flush_every=32 / flush_ms=300000 it is 288 flushes a day: 2.5x longer.

Consumption. oldest() gives the next record to send (fields in .channel,
.value, .taken) and its seq; after client.publish() the node calls
sent(seq, packet_id); when the client's on_publish fires, acked(packet_id).
A small table (`window` entries, preallocated) maps packet ids to seqs;
records are removed only from the tail, once every earlier one is acked,
so PUBACKs in any order are safe. QoS 0: sent(seq, 0) is the ack.

Policies. "all": keep every reading; when the store is full the oldest is
dropped and counted in `dropped`. "latest": keep only the newest value per
channel; a superseded unsent value is counted in `dropped`, and when the
log wraps a live value is copied forward rather than lost.

Appending, flush(), poll(), oldest(), sent() and acked() allocate
nothing, on a 32-bit board too: fields are packed into preallocated
buffers, a flush writes one of the preallocated memoryviews of the buffer,
files stay open, and every number they compute stays below 2**30, a board's
largest small int (above it an int is a long int, allocated per operation):
- the check is not binascii.crc32, whose result is >= 2**30 for three
  records in four, but the same bits from a table of 16-bit halves;
- a record's value and an old-format `taken` are put together from 16-bit
  halves, so a negative value never passes through its u32 form;
- seqs, marker generations and the slot count behind bytes_written grow by
  one per reading (or per marker): 2**30 of them is 34 years of readings
  taken offline, one a second (the store is not touched while online);
- `taken` (seconds since 2024) stays below 2**30 until 2058.
A value the caller passes at or above 2**30 (a `value`, a `taken`) is a
long int already and comes back as one.
"""

import os
import struct
from array import array

from compat import const, ticks_add, ticks_diff

_RECORD = const(16)
_KIND_READING = const(0x54)  # 'T': taken counts from 2024 (see the record layout)
_KIND_READING_R = const(0x52)  # the first format, read and converted
_KIND_MARKER = const(0x4D)
_MARKER_SLOTS = const(8)
_GONE = const(255)  # node.store_layout.GONE: the channel of a sensor no longer on the board
_READING = "<IIiBBH"  # seq, taken, value, channel, kind, check
_MARKER = "<IIIBBH"  # generation, tail seq, capacity, kind, log2(segment records), check
# Long ints on a 32-bit board, made once here; comparing a small int
# with them allocates nothing.
_U32_END = 1 << 32
_I32_MIN = -(1 << 31)
_I32_END = 1 << 31
# A board's ticks_add refuses an interval of 2**29 ms or more (6.2 days).
_FLUSH_MS_END = const(1 << 29)
# node.timestamp.UNIX_2024 (1704067200 = 0x65920080, above 2**30) in
# 16-bit halves, for the first format.
_UNIX_2024_HI = const(0x6592)
_UNIX_2024_LO = const(0x0080)
# CRC-32's reflected polynomial 0xEDB88320 in 16-bit halves.
_POLY_HI = const(0xEDB8)
_POLY_LO = const(0x8320)


def _crc_tables():
    """The byte-at-a-time CRC-32 table (binascii's), each entry split into
    its high and low 16 bits so that no step reaches 2**30."""
    table_hi = array("H", [0] * 256)
    table_lo = array("H", [0] * 256)
    for n in range(256):
        hi, lo = 0, n
        for _ in range(8):
            carry = lo & 1
            lo = (lo >> 1) | ((hi & 1) << 15)
            hi >>= 1
            if carry:
                hi ^= _POLY_HI
                lo ^= _POLY_LO
        table_hi[n] = hi
        table_lo[n] = lo
    return table_hi, table_lo


_CRC_HI, _CRC_LO = _crc_tables()


def _check(buf, o):
    """The record check of the 16 bytes at buf[o]: the low 16 bits of their
    CRC-32 with the check field (bytes 14 and 15) read as zero, so the same
    function writes and verifies a check without touching the record.
    The register is kept as two 16-bit halves: crc32's 32-bit value would
    be a long int on a board. The price is speed at boot, where every slot
    is checked: reopening a full 2048-slot store took 19 ms instead of 5 ms
    with binascii on the Unix port."""
    table_hi = _CRC_HI
    table_lo = _CRC_LO
    hi = lo = 0xFFFF
    end = o + 14
    for i in range(o, o + _RECORD):
        x = (lo ^ (buf[i] if i < end else 0)) & 0xFF
        # crc = table[x] ^ (crc >> 8), one half at a time
        lo = table_lo[x] ^ (lo >> 8) ^ ((hi & 0xFF) << 8)
        hi = table_hi[x] ^ (hi >> 8)
    return lo ^ 0xFFFF


class FlashStore:
    def __init__(
        self,
        path,
        capacity=2048,
        policy="all",
        channels=0,
        flush_every=32,
        flush_ms=120000,
        commit_every=64,
        window=32,
        segment_bytes=4096,
        opener=open,
        names=None,
    ):
        """path: a directory (created if missing). capacity: record slots in
        all. channels: how many channels the node has (required for
        "latest"; for "all", 0 means any 0..255). window: records that may
        be sent and unacknowledged at once (>= the client's in-flight
        limit). opener: open() or a stand-in with the same signature.
        names: the channels' names, in order (node.store_layout): readings
        written under an earlier list come back under their own channel's
        index in this one, or not at all when it is gone."""
        if policy not in ("all", "latest"):
            raise ValueError("store policy must be 'all' or 'latest', got %r" % (policy,))
        if not 1 <= flush_every <= 256:
            raise ValueError("store flush_every must be 1 to 256 records, got %r" % (flush_every,))
        if capacity < 2 * flush_every:
            raise ValueError(
                "store capacity must be at least 2 * flush_every = %d records, got %r" % (2 * flush_every, capacity)
            )
        if not 0 <= channels <= 256:
            raise ValueError("store channels must be 0 to 256, got %r" % (channels,))
        if names is not None and len(names) >= _GONE:
            raise ValueError("store names must be fewer than %d, got %d" % (_GONE, len(names)))
        if policy == "latest" and (channels < 1 or capacity < 2 * channels):
            raise ValueError(
                "store policy 'latest' needs channels >= 1 and capacity >= 2 * channels, got %r and %r"
                % (channels, capacity)
            )
        log2 = 0
        while (_RECORD << log2) < segment_bytes:
            log2 += 1
        if (_RECORD << log2) != segment_bytes or log2 > 16:
            raise ValueError("store segment_bytes must be a power of two from 16 to 1 MiB, got %r" % (segment_bytes,))
        if window < 1 or commit_every < 1:
            raise ValueError("store window and commit_every must be >= 1, got %r, %r" % (window, commit_every))
        if not 1 <= flush_ms < _FLUSH_MS_END:
            # poll() arms with ticks_add(now, flush_ms), which a board refuses from 2**29 ms.
            raise ValueError("store flush_ms must be 1 to %d ms (6.2 days), got %r" % (_FLUSH_MS_END - 1, flush_ms))
        self.path = path
        self.capacity = capacity
        self.policy = policy
        self.channels = channels
        self.flush_every = flush_every
        self.flush_ms = flush_ms
        self.commit_every = commit_every
        self.window = window
        self._segment_log2 = log2
        self._segment = 1 << log2  # records per segment file (the last may be shorter)
        self._opener = opener
        self._names = names
        # Earlier channel lists still in use (node.store_layout): a record
        # up to seq _era_end[i] was written under list i, and its channel
        # is _era_map[i][its index] now.
        self._era_end = []
        self._era_map = []

        # The record being read or written, and the RAM batch with a view of
        # each length, so a flush is one write() of an existing object.
        self._rec = bytearray(_RECORD)
        self._mark = bytearray(_RECORD)
        self._buf = bytearray(flush_every * _RECORD)
        view = memoryview(self._buf)
        self._views = [view[0 : k * _RECORD] for k in range(1, flush_every + 1)]
        self._win = [0] * window  # per seq % window: packet id awaiting ack, 0 = done
        self._latest = [0] * channels if policy == "latest" else None

        # Fields of the record oldest() returned.
        self.channel = 0
        self.value = 0
        self.taken = 0
        self._loaded = -1  # seq whose fields are in channel/value/taken

        self.dropped = 0  # readings dropped (full) or superseded ("latest"), since boot
        self.orphaned = 0  # readings found at boot whose sensor is no longer on the board (skipped)
        self.torn = 0  # slots found unreadable at boot or on replay
        self.relocated = 0  # "latest": live values copied forward when the log wrapped
        self.flushes = 0  # data writes (each one write + one flush)
        self.write_error = None  # OSError of a batch write append() kept going after; its caller clears it
        self.commits = 0  # marker writes
        self._slots_written = 0  # records and markers; a count of 16 B, not bytes, stays below 2**30

        self._next = 1  # seq the next append gets
        self._tail = 1  # oldest seq held (not acknowledged, not dropped)
        self._read = 1  # next seq oldest() hands out; [tail, read) are sent
        self._flushed = 1  # seqs below are on flash (or acknowledged); the rest in _buf
        self._on_flash_end = 1  # one past the highest seq ever written to flash
        self._committed = 1  # the tail seq in the newest marker on flash
        self._generation = 0  # the newest marker's generation
        self._holes = 0  # unreadable slots between tail and head, found at boot
        self._unsent_live = 0  # "latest": channels whose newest value is unsent
        self._acks_since_commit = 0
        self._armed = False  # a flush is due at _due
        self._due = 0

        self._files = []
        self._marker_file = None
        self._open_files()
        self._recover()
        self.recovered = self.count

    # ---- state -------------------------------------------------------------

    @property
    def count(self):
        """Readings held: not yet acknowledged (including those in flight)."""
        if self._latest is not None:
            return self._unsent_live + self._read - self._tail
        return self._next - self._tail - self._holes

    @property
    def unsent(self):
        """Readings not yet handed out by oldest()/sent()."""
        if self._latest is not None:
            return self._unsent_live
        return self._next - self._read - self._holes

    @property
    def bytes_written(self):
        """Bytes of records and markers written since boot."""
        return self._slots_written * _RECORD

    @property
    def durable_seq(self):
        """Every reading up to this seq is on flash or acknowledged."""
        return self._flushed - 1

    @property
    def committed_seq(self):
        """Every reading up to this seq is recorded on flash as acknowledged:
        it will not be replayed after a reset."""
        return self._committed - 1

    # ---- appending ---------------------------------------------------------

    def append(self, channel, value, taken=0):
        """Store a reading; returns its seq. Written to flash with the next
        flush (see the module docstring). If that write fails here, the
        reading stays in RAM, held: append returns, leaves the error in
        write_error, and the next append or flush retries the write.
        Raises OSError only for a reading it did not keep, as when that
        retry fails again (nothing has changed then)."""
        if not 0 <= channel < (self.channels or 256):
            raise ValueError("store channel must be 0 to %d, got %r" % ((self.channels or 256) - 1, channel))
        if not _I32_MIN <= value < _I32_END:
            raise ValueError("store value must fit 32 bits signed, got %r" % (value,))
        if not 0 <= taken < _U32_END:
            raise ValueError("store taken must be 0 to 2**32-1 seconds since 2024, got %r" % (taken,))
        self._room()  # before anything is dropped to make room for the reading
        latest = self._latest
        if latest is None:
            if self._next - self._tail >= self.capacity:
                self._drop_tail()
            return self._put(channel, value, taken)
        self._make_room_latest()
        seq = self._put(channel, value, taken)  # raises before keeping it: nothing below is changed
        if latest[channel] >= self._read:
            self.dropped += 1  # superseded before it was sent
        else:
            self._unsent_live += 1
        latest[channel] = seq
        return seq

    def _room(self):
        # A previous batch write failed and left the batch full (or at the
        # end of its segment file): retry it before the buffer takes more.
        # Raises OSError if it fails again.
        if self._next > self._flushed and self._batch_must_end():
            self._write()

    def _put(self, channel, value, taken):
        """Buffer a reading, its seq the next; write the batch if it ends
        here. Raises OSError only before buffering it (see _room)."""
        self._room()
        seq = self._next
        rec = self._rec
        struct.pack_into(_READING, rec, 0, seq, taken, value, channel, _KIND_READING, 0)
        check = _check(rec, 0)
        rec[14] = check & 0xFF
        rec[15] = check >> 8
        offset = (seq - self._flushed) * _RECORD
        self._buf[offset : offset + _RECORD] = rec
        self._next = seq + 1
        if self._batch_must_end():
            try:
                self._write()
            except OSError as e:  # kept in RAM: the next append or flush retries the write
                self.write_error = e
        return seq

    def _batch_must_end(self):
        # Full, or the next slot starts another segment file (one write, one file).
        return self._next - self._flushed >= self.flush_every or (self._next % self.capacity) % self._segment == 0

    def _drop_tail(self):
        s = self._tail
        if s >= self._read:  # never sent: a reading lost to the full store
            if self._holes and (not self._fetch(s) or (self.channels and self.channel >= self.channels)):
                self._holes -= 1  # unreadable, or an orphan (see _recover): not counted as held
            else:
                self.dropped += 1
            self._read = s + 1
        self._tail = s + 1
        self._advance()

    def _make_room_latest(self):
        # Reuse the oldest slot; a value that is still the newest of its
        # channel and unsent is copied forward first. At most `channels`
        # values are live and capacity >= 2 * channels, so this ends.
        # A failed batch write is retried before a live value leaves its
        # slot: if that raises, the value is still where it was.
        latest = self._latest
        while self._next - self._tail >= self.capacity:
            s = self._tail
            ch = self._live_channel(s)
            if s >= self._read and ch >= 0:
                self._room()
            self._tail = s + 1
            if s >= self._read:
                self._read = s + 1
                if ch >= 0:
                    if self._fetch(s):
                        latest[ch] = self._put(self.channel, self.value, self.taken)
                        self.relocated += 1
                    else:
                        latest[ch] = 0
                        self._unsent_live -= 1
                        self.torn += 1
            self._advance()

    def _oldest_live(self):
        latest = self._latest
        oldest = self._next
        for ch in range(self.channels):
            seq = latest[ch]
            if self._read <= seq < oldest:
                oldest = seq
        return oldest

    def _live_channel(self, seq):
        latest = self._latest
        for ch in range(self.channels):
            if latest[ch] == seq:
                return ch
        return -1

    # ---- writing -----------------------------------------------------------

    def _write(self):
        """Write the RAM batch to its slots: one write(), one flush()."""
        k = self._next - self._flushed
        if k <= 0:
            return
        if self._tail >= self._next:  # all acknowledged already: nothing to keep
            self._flushed = self._next
            return
        slot = self._flushed % self.capacity
        f = self._files[slot >> self._segment_log2]
        f.seek((slot & (self._segment - 1)) * _RECORD)
        f.write(self._views[k - 1])
        f.flush()
        self._flushed = self._next
        self._on_flash_end = self._next
        self.flushes += 1
        self._slots_written += k
        if not self._acks_since_commit:
            self._armed = False

    def _commit(self):
        """Persist the tail: a marker in the next of the marker slots."""
        self._generation += 1
        gen = self._generation
        mark = self._mark
        struct.pack_into(_MARKER, mark, 0, gen, self._tail, self.capacity, _KIND_MARKER, self._segment_log2, 0)
        check = _check(mark, 0)
        mark[14] = check & 0xFF
        mark[15] = check >> 8
        f = self._marker_file
        f.seek((gen % _MARKER_SLOTS) * _RECORD)
        f.write(mark)
        f.flush()
        self._committed = self._tail
        self._acks_since_commit = 0
        self.commits += 1
        self._slots_written += 1
        if self._next == self._flushed:
            self._armed = False

    def _commit_if(self, due):
        if not self._acks_since_commit:
            return
        if self._committed >= self._on_flash_end:
            # Nothing acknowledged since the last marker was ever on flash,
            # so nothing could come back after a reset: save the write.
            self._acks_since_commit = 0
            return
        if due:
            self._commit()

    def flush(self):
        """Write what waits in RAM and the acknowledgements: call it before a
        reset or deep sleep and when the link goes down."""
        self._write()
        self._commit_if(True)
        self._armed = False

    def poll(self, now):
        """Flush when flush_ms has passed since something became pending.
        now: ticks_ms(). Returns ms until that is due, or -1 if nothing is."""
        if self._next == self._flushed and not self._acks_since_commit:
            self._armed = False
            return -1
        if not self._armed:
            self._armed = True
            self._due = ticks_add(now, self.flush_ms)
            return self.flush_ms
        left = ticks_diff(self._due, now)
        if left > 0:
            return left
        self.flush()
        return -1

    # ---- consuming ---------------------------------------------------------

    def oldest(self):
        """The seq of the next reading to send, its fields in .channel,
        .value, .taken; -1 if none (or `window` are awaiting acks)."""
        latest = self._latest
        while True:
            s = self._read
            if s >= self._next or s - self._tail >= self.window:
                return -1
            if s == self._loaded:
                return s
            if latest is not None and self._live_channel(s) < 0:
                # Superseded: consumed without sending. With nothing in
                # flight, jump to the oldest live value in one step.
                if s == self._tail:
                    self._read = self._oldest_live()
                    self._move_tail(self._read)
                else:
                    self._done(s)
                continue
            fetched = self._fetch(s)
            if not fetched or (self.channels and self.channel >= self.channels):
                if not fetched or not self._era_end or self.channel != _GONE:
                    self.torn += 1  # an orphan (see _recover) was counted at boot
                if latest is not None:
                    latest[self._live_channel(s)] = 0
                    self._unsent_live -= 1
                elif self._holes:
                    self._holes -= 1
                self._done(s)
                continue
            self._loaded = s
            return s

    def sent(self, seq, packet_id):
        """The reading oldest() returned went out with this packet id (0 for
        QoS 0, which needs no ack)."""
        if seq < self._read:
            return  # dropped in the meantime (the store was full)
        if seq != self._read or seq >= self._next:
            raise ValueError("store sent(%d): the reading to send next is %d" % (seq, self._read))
        if self._latest is not None:
            self._unsent_live -= 1
        self._loaded = -1
        if packet_id:
            self._win[seq % self.window] = packet_id
            self._read = seq + 1
        else:
            self._done(seq)

    def acked(self, packet_id):
        """on_publish fired for packet_id: True if it carried a stored reading."""
        win = self._win
        w = self.window
        s = self._tail
        while s < self._read:
            if win[s % w] == packet_id:
                win[s % w] = 0
                self._advance()
                return True
            s += 1
        return False

    def rewind(self):
        """Hand out again everything sent and not acknowledged (for a client
        that lost its in-flight messages; ours keeps them across reconnects)."""
        self._read = self._tail
        self._loaded = -1
        if self._latest is not None:
            self._unsent_live = 0
            for ch in range(self.channels):
                if self._latest[ch] >= self._tail:
                    self._unsent_live += 1

    def _done(self, seq):
        self._win[seq % self.window] = 0
        self._read = seq + 1
        self._advance()

    def _advance(self):
        """Move the tail past acknowledged readings; persist it when due."""
        win = self._win
        w = self.window
        t = self._tail
        while t < self._read and win[t % w] == 0:
            t += 1
        self._move_tail(t)

    def _move_tail(self, t):
        if t == self._tail:
            return
        self._acks_since_commit += t - self._tail
        self._tail = t
        if t >= self._next:  # empty: what waits in RAM is acknowledged too
            self._flushed = self._next
            self._commit_if(True)
        else:
            self._commit_if(self._acks_since_commit >= self.commit_every)

    # ---- reading flash -----------------------------------------------------

    def _fetch(self, seq):
        """Load seq's fields into channel/value/taken; False if its slot
        does not hold it intact."""
        self._loaded = -1
        if seq >= self._flushed:
            self._decode(self._buf, (seq - self._flushed) * _RECORD)
            return True
        slot = seq % self.capacity
        f = self._files[slot >> self._segment_log2]
        f.seek((slot & (self._segment - 1)) * _RECORD)
        rec = self._rec
        if f.readinto(rec) != _RECORD or _valid_reading(rec) != seq:
            return False
        self._decode(rec, 0)
        if self._era_end:
            self.channel = self._translate(seq, self.channel)
        return True

    def _translate(self, seq, channel):
        """The channel index now of a record written with channel under the
        list its seq was written under."""
        ends = self._era_end
        i = 0
        while i < len(ends):
            if seq <= ends[i]:
                mapping = self._era_map[i]
                return mapping[channel] if channel < len(mapping) else _GONE
            i += 1
        return channel

    def _decode(self, buf, o):
        # From 16-bit halves: the whole u32 of a negative value, or of a
        # Unix time, is >= 2**30, a long int on a board.
        hi = buf[o + 6] | buf[o + 7] << 8
        lo = buf[o + 4] | buf[o + 5] << 8
        if buf[o + 13] == _KIND_READING_R and (hi > _UNIX_2024_HI or (hi == _UNIX_2024_HI and lo >= _UNIX_2024_LO)):
            hi -= _UNIX_2024_HI  # first format, Unix seconds: since 2024 with a borrow
            lo -= _UNIX_2024_LO
            if lo < 0:
                lo += 0x10000
                hi -= 1
        self.taken = hi << 16 | lo
        hi = buf[o + 10] | buf[o + 11] << 8
        if hi & 0x8000:
            hi -= 0x10000  # two's complement: the sign is in the top half
        self.value = hi << 16 | buf[o + 8] | buf[o + 9] << 8
        self.channel = buf[o + 12]

    # ---- opening -----------------------------------------------------------

    def _open_files(self):
        try:
            os.stat(self.path)
        except OSError:
            os.mkdir(self.path)
        n = (self.capacity + self._segment - 1) >> self._segment_log2
        for i in range(n):
            records = min(self._segment, self.capacity - i * self._segment)
            self._files.append(self._open_sized("%s/seg%d" % (self.path, i), records * _RECORD))
        self._marker_file = self._open_sized(self.path + "/marker", _MARKER_SLOTS * _RECORD)

    def _open_sized(self, name, size):
        try:
            f = self._opener(name, "r+b")
        except OSError:
            f = self._opener(name, "w+b")
        end = f.seek(0, 2)
        if end < size:  # new, or cut short: extend with zeros (never a valid record)
            zeros = bytes(min(size - end, 512))
            while end < size:
                n = min(size - end, len(zeros))
                f.write(zeros if n == len(zeros) else zeros[:n])
                end += n
            f.flush()
        return f

    def _reformat(self):
        for f in self._files + [self._marker_file]:
            end = f.seek(0, 2)
            f.seek(0)
            f.write(bytes(end))
            f.flush()

    def _recover(self):
        gen, tail0 = self._newest_marker()
        if gen < 0:  # another geometry: its slots mean something else
            self._reformat()
            gen, tail0 = 0, 1
        # Pass 1: the head is the newest intact record in its own slot.
        newest = 0
        for seq in self._scan():
            if seq > newest:
                newest = seq
        low = max(tail0, newest - self.capacity + 1, 1)
        if self._names is not None:
            from node import store_layout

            self._era_end, self._era_map = store_layout.eras(self.path, self._names, newest, low)
            self._names = None
        # Pass 2: what is held between the tail and the head.
        first = 0
        held = 0
        latest = self._latest
        for seq in self._scan():
            if low <= seq <= newest:
                channel = self._translate(seq, self._rec[12])
                if self._era_end and channel == _GONE:
                    # Intact, of a sensor no longer on the board: skipped
                    # at replay, as a hole, and said apart from torn ones.
                    self.orphaned += 1
                elif self.channels and channel >= self.channels:
                    continue
                else:
                    held += 1
                    if latest is not None and seq > latest[channel]:
                        latest[channel] = seq
                if first == 0 or seq < first:
                    first = seq
        self._next = max(newest + 1, tail0)
        self._tail = self._read = first if held else self._next
        self._flushed = self._next
        self._on_flash_end = newest + 1
        self._holes = (newest - first + 1 - held) if held else 0  # orphans included
        self.torn = self._holes - self.orphaned if held else 0
        self._generation = gen
        self._committed = tail0
        if latest is not None:
            self._holes = 0
            self._unsent_live = 0
            for ch in range(self.channels):
                if latest[ch]:
                    self._unsent_live += 1
        if gen == 0:
            self._commit()  # record the geometry

    def _scan(self):
        """The seq of every intact record in its own slot (the record stays in _rec)."""
        rec = self._rec
        slot = 0
        for f in self._files:
            f.seek(0)
            for _ in range(min(self._segment, self.capacity - slot)):
                if f.readinto(rec) == _RECORD:
                    seq = _valid_reading(rec)
                    if seq and seq % self.capacity == slot:
                        yield seq
                slot += 1

    def _newest_marker(self):
        """(generation, tail) of the newest valid marker; (0, 1) if none;
        (-1, 0) if it describes a store of another size."""
        f = self._marker_file
        mark = self._mark
        best = 0
        tail = 1
        geometry_ok = True
        f.seek(0)
        for slot in range(_MARKER_SLOTS):
            if f.readinto(mark) != _RECORD:
                break
            if mark[12] != _KIND_MARKER or _check(mark, 0) != (mark[14] | mark[15] << 8):
                continue
            gen, t, capacity, _, log2, _ = struct.unpack(_MARKER, mark)
            if gen == 0 or gen % _MARKER_SLOTS != slot or gen <= best:
                continue
            best, tail = gen, t
            geometry_ok = capacity == self.capacity and log2 == self._segment_log2
        if not geometry_ok:
            return -1, 0
        return best, tail

    def close(self):
        self.flush()
        for f in self._files:
            f.close()
        self._marker_file.close()
        self._files = []


def _valid_reading(rec):
    """The seq of the reading in rec if its kind and check hold, else 0."""
    kind = rec[13]
    if kind != _KIND_READING and kind != _KIND_READING_R:
        return 0  # most unwritten or foreign slots end here, before the CRC
    if _check(rec, 0) != (rec[14] | rec[15] << 8):
        return 0
    return rec[0] | rec[1] << 8 | rec[2] << 16 | rec[3] << 24
