# What the two halves of a release coming in (ota.prepare's Intake, then
# ota.receiver's Receiver) share: the state both keep, and how they take a
# chunk, an abort and a poll from the updater. Each half adds its own
# steps; they are never in RAM together.

from compat import const, ticks_diff, ticks_ms
from ota import fs
from ota.errors import ManifestError

HEADER = const(12)  # a chunk's: the release id's first 8 bytes, the file (u16), the index (u16)
_ID_BYTES = const(8)
_GAP_REPORT_MS = const(500)
_BUFFER = const(512)
_STEP_BYTES = const(4096)  # flash read or copied per poll(): the loop stays responsive
_IDLE_MS = const(60000)


class Stage:
    def __init__(self, u, release, folder, tag, phase):
        self.u = u
        self.release = release
        self.dir = folder  # where it is received: <root>ota-releases/<id>/
        self.tag = tag  # the first 8 bytes of the HMAC: every chunk starts with them
        self.phase = phase
        self.gap = False  # a chunk came ahead of the one wanted: the host is told where to go on
        self._gap_at = 0
        self._out = None  # the file being written
        self.reader = None  # a manifest Reader walking the files
        self.index = 0  # the chunk wanted next
        self._written = 0  # bytes of the file being written on flash
        self.done = 0  # chunks in: received, or copied from the running release
        self.total = 0
        self.copy = None  # an ota.fs.Copy under way
        # Made with the stage: a heap that has filled up in pieces may have no room for it later.
        self.buf = bytearray(_BUFFER)  # the one buffer flash-to-flash work goes through

    # ---- called by the updater ------------------------------------------

    def chunk(self, payload):
        if len(payload) < HEADER:
            return
        tag = self.tag
        for i in range(_ID_BYTES):
            if payload[i] != tag[i]:
                return  # another release's (a second sender): not ours to judge
        try:
            self._chunk(payload, (payload[8] << 8) | payload[9], (payload[10] << 8) | payload[11])
        except (ManifestError, OSError) as e:
            self.fail(e)

    def abort(self, payload):
        if bytes(payload).strip() == self.release.encode():  # compared as bytes: any payload is harmless
            self.discard()
            from ota import outcome  # only when it ends: not held while receiving

            outcome.aborted(self.u, self.release)

    def poll(self):
        try:
            if self.copy is not None:
                if self.copy.step(_STEP_BYTES):
                    copy, self.copy = self.copy, None
                    copy.then(self, copy)
                    self.u.progress_due = True
                return 0
            if self._work():
                return 0
        except (ManifestError, OSError) as e:
            self.fail(e)
            return 0
        return _IDLE_MS

    def fail(self, error):
        """Refused: the folder goes; the running release and the pointer
        were never touched."""
        from ota import outcome  # only when it ends: not held while receiving

        outcome.failed(self, error)

    def discard(self):
        fs.discard(self)

    def _report_gap(self):
        # A chunk ahead of the one wanted: tell the host where to go on, at
        # most every _GAP_REPORT_MS.
        now = ticks_ms()
        if self.gap and ticks_diff(now, self._gap_at) < _GAP_REPORT_MS:
            return
        self.gap = True
        self._gap_at = now
        self.u.progress_due = True

    # ---- each half's own -------------------------------------------------

    def _chunk(self, payload, file, index):
        """A chunk of file (0: the manifest) for this stage to take."""

    def _work(self) -> bool:
        """One step of flash work, if there is one: True when it did one."""
        return False
