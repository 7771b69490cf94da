# The first half of an update, loaded for it and forgotten when the files
# start coming: the manifest and its HMAC, then (after ota.checks) the
# files the running release already has, copied on the node instead of
# sent. ota.begin starts it; each step hands over to the next through
# flash (Updater.handoff), so their code is never in RAM together.

from binascii import hexlify

from compat import const
from ota import fs
from ota.errors import ManifestError
from ota.stage import HEADER, Stage
from ota.updater import forget_module

_PROGRESS_EVERY = const(4)
_MANIFEST = const(1)
_PREPARE = const(2)


class Intake(Stage):
    """The manifest coming in, then checked, then the copy pass; hands over
    to ota.receiver (through flash: the need file) when done."""

    def __init__(self, u, release, fields, folder, running):
        Stage.__init__(self, u, release, folder, fields[0], _PREPARE)
        self.running = running  # the running release's tree: what it has is copied from there
        self.manifest_bytes, self.release_bytes, self.chunk_size = fields[1:]
        self._mac = None
        self.need = None  # bitmap: the files the host sends

    def _work(self):
        if self.phase == _PREPARE:
            self._prepare_step()
            return True
        return False

    def state_text(self):
        if self.need is None:
            return "receiving manifest"
        return "receiving %d/%d" % (self.done, self.total)

    def progress(self):
        d = {"state": "manifest" if self.phase == _MANIFEST else "preparing", "release": self.release}
        d["chunk_size"] = self.chunk_size
        if self.phase == _MANIFEST:
            d["file"] = 0
            d["chunk"] = self.index
        else:
            d["done"] = self.done
            d["total"] = self.total
        if self.gap:
            d["gap"] = True
        return d

    # ---- the manifest --------------------------------------------------

    def start_manifest(self):
        from ota.hmac256 import HMAC

        self.phase = _MANIFEST
        self.index = self._written = 0
        self._mac = HMAC(self.u.key) if self.u.key is not None else None
        self._out = fs.open_write(self.dir + "release.part")
        self.u.progress_due = True

    def _chunk(self, payload, file, index):
        if self.phase != _MANIFEST or file != 0 or index != self.index:
            # Ahead of the chunk wanted (or a file's before the manifest is in).
            if self.phase != _MANIFEST or file > 0 or index > self.index:
                self._report_gap()
            return
        left = self.manifest_bytes - self._written
        expected = self.chunk_size if left > self.chunk_size else left
        length = len(payload) - HEADER
        if length != expected:
            raise ManifestError("chunk %d of the manifest has %d bytes, expected %d" % (index, length, expected))
        data = memoryview(payload)[HEADER:]
        fs.write(self._out, data)
        self._mac.update(data)
        self._written += length
        self.index += 1
        if self._written == self.manifest_bytes:
            self._manifest_received()
        elif self.index % _PROGRESS_EVERY == 0:
            self.u.progress_due = True

    def _manifest_received(self):
        from ota.hmac256 import equal

        self._out.close()
        self._out = None
        mac, self._mac = self._mac, None
        forget_module("ota.hmac256")
        if mac is None or not equal(mac.digest(), self.tag):
            raise ManifestError(
                "bad HMAC: the manifest is not signed with this node's OTA_KEY, or was altered on the way"
            )
        fs.rename(self.dir + "release.part", self.dir + "release.txt")
        # The checks next (ota.checks), from flash, without this in RAM.
        self.u.receiver = None
        self.u.handoff = (self.release, "check")
        self.u.progress_due = True

    def _open_reader(self):
        if self.reader is not None:
            self.reader.f.close()
        from ota.manifest import Reader

        self.reader = Reader(fs.open_read(self.dir + "release.txt"))
        self.reader.header()

    def chunks(self, size):
        return (size + self.chunk_size - 1) // self.chunk_size

    # ---- what the running release has -----------------------------------

    def _count(self):
        # The manifest passed ota.checks: its files and chunks, counted.
        self._open_reader()
        files = 0
        while self.reader.next():
            files += 1
            self.total += self.chunks(self.reader.size)
        self.need = bytearray((files + 7) // 8)
        self.done = 0
        self._open_reader()
        self.u.progress_due = True

    def _prepare_step(self):
        """The next file of the manifest: copied from the running release
        when it has the same (checked against the manifest's SHA-256), else
        marked for the host to send."""
        if self.need is None:
            self._count()
            return
        reader = self.reader
        if not reader.next():
            reader.f.close()
            self.reader = None
            fs.write_atomic(self.dir + "need", hexlify(bytes(self.need)))
            self.u.receiver = None
            self.u.handoff = (self.release, "receive")  # ota.receiver takes it from flash
            self.u.progress_due = True
            return
        target = self.dir + reader.path
        if fs.stat_size(target) == reader.size:
            # Taken before a reset (renamed only once its SHA-256 matched).
            self.done += self.chunks(reader.size)
            return
        if reader.size == 0:
            # An empty file needs no chunk: written here, never sent.
            fs.makedirs(target[: target.rfind("/")])
            fs.open_write(target + ".part").close()
            self.copy = fs.Copy(target + ".part", None, 0, self.buf, Intake._copied)
            return
        source = self.running + reader.path
        if fs.stat_size(source) == reader.size:
            fs.makedirs(target[: target.rfind("/")])
            self.copy = fs.Copy(source, target + ".part", reader.size, self.buf, Intake._copied)
            return
        self.need[reader.index >> 3] |= 1 << (reader.index & 7)

    def _copied(self, copy):
        reader = self.reader
        target = self.dir + reader.path
        if hexlify(copy.sha.digest()) == reader.sha:
            fs.rename(target + ".part", target)
            self.done += self.chunks(reader.size)
        elif reader.size == 0:
            raise ManifestError("file %s: SHA-256 does not match the manifest" % reader.path)
        else:
            fs.remove_if_there(target + ".part")
            self.need[reader.index >> 3] |= 1 << (reader.index & 7)
