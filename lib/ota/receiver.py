# The second half of an update (the messages: ota.updater): the files the
# host sends, then all of them read back and checked, then the pointer
# written. Started from what is on flash, after ota.prepare (the manifest,
# the checks, the copy pass) has handed over or after a reset, so the two
# halves are never in RAM together. Bounded memory: one 1 KB buffer for
# flash-to-flash work, the manifest read a line at a time, a bitmap of the
# files to receive; a chunk goes from the client's receive buffer straight
# to flash.
"""On flash, beside the running release, in /ota-releases/<id>/:

  begin          the begin message, as received (written first)
  release.part   the manifest as it arrives, its HMAC computed on the way;
  release.txt    renamed so once the HMAC checks out
  need           which files the host sends (hex bitmap); the others were
                 copied from the running release and matched the manifest's
                 SHA-256 (written when that is done)
  main.py, board.py, lib/...   the tree; each file written as <path>.part
                 and renamed when its SHA-256 matches the manifest's

Every step resumes from what is there after a reset: nothing of the update
lives only in RAM. Once every file is in, all are read back and checked
again, then the pointer is written: that one write activates the release.
"""

import hashlib
from binascii import hexlify, unhexlify

from compat import const
from ota import fs
from ota.errors import ManifestError
from ota.manifest import MAX_FILES, Reader
from ota.stage import HEADER, Stage

_ID_BYTES = const(8)
_PROGRESS_EVERY = const(4)  # chunks between progress reports and flushes to flash
_RECEIVING = const(3)
_VERIFYING = const(4)


def resume(u, release):
    """Receives release, whose copy pass is done (its need file written),
    from where it is on flash. True if it runs."""
    folder = u.folder + release + "/"
    begin = (fs.read_small(folder + "begin", 200) or b"").split(b" ")
    try:
        tag, chunk = unhexlify(begin[1])[:_ID_BYTES], int(begin[4])
    except (ValueError, IndexError):
        return False
    r = Receiver(u, release, folder, tag, chunk)
    try:
        r.enter_receiving()
    except (ManifestError, OSError) as e:
        u.log("ota: release %s cannot be resumed (%s): dropped" % (release, e))
        r.discard()
        return False
    u.receiver = r
    return True


class Receiver(Stage):
    def __init__(self, u, release, folder, tag, chunk_size):
        Stage.__init__(self, u, release, folder, tag, _RECEIVING)
        self.chunk_size = chunk_size
        self.need = bytearray()  # bitmap: the files the host sends (read from flash)
        self.file = 0  # the file a chunk is wanted for (n: the manifest's n-th)
        self._sha = None

    def _work(self):
        if self.phase == _VERIFYING:
            self._verify_step()
            return True
        return False

    def state_text(self):
        return "verifying" if self.phase == _VERIFYING else "receiving %d/%d" % (self.done, self.total)

    def progress(self):
        if self.phase == _VERIFYING:
            return {"state": "verifying", "release": self.release}
        d = {"state": "receiving", "release": self.release, "chunk_size": self.chunk_size}
        d["file"] = self.file
        d["chunk"] = self.index
        d["done"] = self.done
        d["total"] = self.total
        d["need"] = str(hexlify(bytes(self.need)), "ascii")
        if self.copy is not None:
            d["busy"] = True  # re-reading a file half written before a reset: no chunk wanted yet
        if self.gap:
            d["gap"] = True
        return d

    # ---- receiving -----------------------------------------------------

    def _open_reader(self):
        if self.reader is not None:
            self.reader.f.close()
        self.reader = Reader(fs.open_read(self.dir + "release.txt"))
        self.reader.header()

    def _chunks(self, size):
        return (size + self.chunk_size - 1) // self.chunk_size

    def _needed(self, index):
        return self.need[index >> 3] & (1 << (index & 7))

    def enter_receiving(self):
        """The totals and the first file wanted, from what is on flash."""
        need = fs.read_small(self.dir + "need", MAX_FILES // 4 + 2) or b""
        self.need = bytearray(unhexlify(need)) if len(need) % 2 == 0 else bytearray()
        self._open_reader()
        reader = self.reader
        total = done = 0
        while reader.next():
            if reader.index >> 3 >= len(self.need):
                raise ManifestError("its need file is not its manifest's")
            chunks = self._chunks(reader.size)
            total += chunks
            if not self._needed(reader.index) or fs.stat_size(self.dir + reader.path) == reader.size:
                done += chunks
        self.total = total
        self.done = done
        self._open_reader()
        self._next_file()
        self.u.progress_due = True

    def _chunk(self, payload, file, index):
        if self.phase != _RECEIVING or self.copy is not None or file != self.file or index != self.index:
            self._gap_seen(file, index)
            return
        reader = self.reader
        left = reader.size - self._written
        expected = self.chunk_size if left > self.chunk_size else left
        length = len(payload) - HEADER
        if length != expected:
            raise ManifestError("chunk %d of %s has %d bytes, expected %d" % (index, reader.path, length, expected))
        data = memoryview(payload)[HEADER:]
        fs.write(self._out, data)
        self._sha.update(data)
        self.done += 1
        self._written += length
        self.index += 1
        if self._written == reader.size:
            self._file_received()
        elif self.index % _PROGRESS_EVERY == 0:
            self._out.flush()  # on flash, for a resume after a reset
            self.u.progress_due = True

    def _gap_seen(self, file, index):
        # Behind the cursor: a resend, nothing to say. Ahead: chunks were
        # lost, or the host runs ahead of a reset: tell it where to go on,
        # at most every so often (ota.stage).
        if file < self.file or (file == self.file and index < self.index):
            return
        self._report_gap()

    def _next_file(self):
        """The cursor to the next file the host sends (resuming one half
        written), or on to verifying when none is left."""
        reader = self.reader
        while reader.next():
            if not self._needed(reader.index):
                continue
            target = self.dir + reader.path
            if fs.stat_size(target) == reader.size:
                continue
            self.file = reader.index + 1
            self.index = self._written = 0
            part = target + ".part"
            have = fs.stat_size(part)
            whole = have // self.chunk_size * self.chunk_size if 0 < have < reader.size else have
            if whole > 0:
                # Resumed: hash what is there (a torn last chunk is cut off
                # by copying only the whole ones), then append after it.
                torn = part + ".tmp" if whole < have else None
                self.copy = fs.Copy(part, torn, whole, self.buf, Receiver._resumed)
                return
            fs.makedirs(target[: target.rfind("/")])
            self._out = fs.open_write(part)
            self._sha = hashlib.sha256()
            self.u.progress_due = True
            return
        self.phase = _VERIFYING
        self._open_reader()
        self.u.progress_due = True

    def _resumed(self, copy):
        reader = self.reader
        part = self.dir + reader.path + ".part"
        if copy.target is not None:
            fs.rename(copy.target, part)
        self._sha = copy.sha
        self._written = copy.done
        self.index = copy.done // self.chunk_size
        self.done += self.index
        if self._written == reader.size:
            self._file_received()
            return
        self._out = fs.open_write(part, "ab")

    def _file_received(self):
        reader = self.reader
        if self._out is not None:
            self._out.close()
            self._out = None
        target = self.dir + reader.path
        if hexlify(self._sha.digest()) != reader.sha:
            raise ManifestError(
                "file %s: SHA-256 does not match the manifest (a corrupted or altered chunk)" % reader.path
            )
        fs.rename(target + ".part", target)
        self._next_file()

    # ---- verifying and activating ---------------------------------------

    def _verify_step(self):
        reader = self.reader
        if not reader.next():
            reader.f.close()
            self.reader = None
            self._activate()
            return
        size = fs.stat_size(self.dir + reader.path)
        if size != reader.size:
            why = "file %s has %d bytes on flash, the manifest says %d" % (reader.path, size, reader.size)
            raise ManifestError(why)
        self.copy = fs.Copy(self.dir + reader.path, None, size, self.buf, Receiver._verified)

    def _verified(self, copy):
        reader = self.reader
        if hexlify(copy.sha.digest()) != reader.sha:
            raise ManifestError(
                "file %s on flash does not match its SHA-256 after writing: a flash error?" % reader.path
            )

    def _activate(self):
        """The one write that switches releases: the pointer. The release
        boots on trial after the reset; the running one stays as previous."""
        from ota import pointer

        u = self.u
        f = fs.open_read(self.dir + "release.txt")
        try:
            h = Reader(f).header()
        finally:
            f.close()
        old = u.pointer
        p = pointer.fresh(u.root, pointer.deploy_stamp(u.root))
        p["active"] = self.release
        p["version"] = h["version"]
        p["previous"] = old["active"]
        p["previous_version"] = old["version"]
        p["trial"] = True
        p["max_boots"] = int(h["boots"])
        p["deadline_s"] = int(h["deadline_s"])
        pointer.save(u.root, p)
        from ota import outcome  # only when it ends: not held while receiving

        outcome.activated(u, p)
