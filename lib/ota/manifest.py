# A release manifest: what tools/ota.py signs and sends first. Text, a line
# per field and per file, so the node reads it a line at a time from flash
# (a release of a few hundred files never sits in RAM) and a person reads it
# as it is:
#
#   ota-release 1
#   version 594e9f6-dirty.3fa2b1c0
#   board pico_w
#   node pico-bedroom
#   arch armv6m
#   deadline_s 300
#   boots 3
#   summary Node: diagnostics every 300 s
#   file 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 2291 board.py
#   file ... 20113 lib/mqtt/client.mpy
#   end 37 151212
#
# Paths are relative to the release's tree (on the board
# /ota-releases/<id>/, which boot.py makes the working directory) and
# sorted, so a repeated path is caught by comparing with the one before.
# The `end` line carries the counts: a manifest cut short, even one signed
# that way by mistake, has none and is refused. The HMAC that authenticates
# all of it travels in the begin message, never in the manifest.
#
# This module only reads (what every step of an update needs); the checks
# a manifest must pass once, before its first file chunk, are ota.prepare's,
# and manifest_text writes one (the host and the tests).

from compat import const
from ota.errors import ManifestError

MAGIC = "ota-release 1"
HEADER = ("version", "board", "node", "arch", "deadline_s", "boots", "summary")
MAX_FILES = const(512)
MAX_FILE_BYTES = const(1048576)
MAX_MANIFEST_BYTES = const(65536)
MAX_LINE = const(320)
MAX_TEXT = const(200)  # version and summary
DEADLINE_S = (2, 3600)  # the first boot's limit to connect and publish a reading
BOOTS = (1, 10)  # boots of an unconfirmed release before it is rolled back


class Reader:
    """Reads a manifest from a binary file a line at a time. header()
    returns the fields (as text); then each next() sets sha (hex, bytes),
    size and path of the following file and returns True, until the end
    line, which it checks against the files read, and returns False."""

    def __init__(self, f):
        self.f = f
        self.index = -1
        self.sha = b""
        self.size = 0
        self.path = ""
        self.total = 0  # bytes of the files read so far
        self._pending = None

    def line(self):
        raw = self.f.readline(MAX_LINE + 1)
        if not raw:
            return None
        if len(raw) > MAX_LINE:
            raise ManifestError("manifest line %d is longer than %d bytes" % (self.index + 2, MAX_LINE))
        if raw[-1:] != b"\n":
            raise ManifestError("manifest truncated: its last line has no end")
        try:
            return str(raw[:-1], "utf-8")
        except UnicodeError:
            raise ManifestError("manifest is not UTF-8 text")

    def header(self):
        if self.line() != MAGIC:
            raise ManifestError("not a release manifest (the first line must be %r)" % MAGIC)
        fields = {}
        for _ in range(len(HEADER) + 2):
            line = self.line()
            if line is None:
                raise ManifestError("manifest truncated: it ends in its header")
            key, _, value = line.partition(" ")
            if key == "file" or key == "end":
                self._pending = line
                return fields
            if key in fields:
                raise ManifestError("manifest has %r twice" % key)
            fields[key] = value
        raise ManifestError("manifest header has more than %d fields" % len(HEADER))

    def next(self):
        line = self._pending
        self._pending = None
        if line is None:
            line = self.line()
        if line is None:
            raise ManifestError("manifest truncated: no end line after %d files" % (self.index + 1))
        fields = line.split(" ")
        try:
            numbers = int(fields[1]) if fields[0] == "end" else int(fields[2])
        except (ValueError, IndexError):
            raise ManifestError("manifest line %r is not 'file <sha256> <size> <path>' nor the end" % line[:60])
        if fields[0] == "end":
            if len(fields) != 3 or numbers != self.index + 1 or fields[2] != str(self.total):
                raise ManifestError(
                    "manifest truncated or altered: it lists %d files of %d bytes, its end line says %r"
                    % (self.index + 1, self.total, line)
                )
            if self.f.readline(1):
                raise ManifestError("manifest has lines after its end line")
            return False
        if fields[0] != "file" or len(fields) != 4:
            raise ManifestError("manifest line %r is not 'file <sha256> <size> <path>'" % line[:60])
        self.index += 1
        self.sha = fields[1].encode()
        self.size = numbers
        self.path = fields[3]
        self.total += numbers
        return True
