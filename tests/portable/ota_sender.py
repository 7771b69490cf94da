# The host's half of an update, in-process, for the updater's portable
# tests: a release built from {path: bytes}, signed, cut into chunks, and
# fed to an Updater through handle() as tools/ota.py sends them over MQTT.
# Runs on CPython, the Unix port and the 32-bit runtime.
import hashlib
import json
import os
from binascii import hexlify, unhexlify

from compat import getenv
from ota.hmac256 import hmac_sha256
from ota.manifest_text import text as write_manifest
from support import unique_id

KEY = b"k" * 32
PREFIX = "house/kitchen/test-node/ota/"
CONFIG = {"PREFIX": "house", "ROOM": "kitchen", "NODE": "test-node"}


def sha_hex(data):
    return str(hexlify(hashlib.sha256(data).digest()), "ascii")


class Release:
    def __init__(self, files, key=KEY, chunk=256, manifest_text=None, **header):
        fields = {
            "version": "2.0",
            "board": "unix",
            "node": "test-node",
            "arch": "x64",
            "deadline_s": 300,
            "boots": 3,
            "summary": "a test release",
        }
        for name in header:
            fields[name] = header[name]
        self.files = files
        self.paths = sorted(files)
        self.chunk = chunk
        entries = [(path, sha_hex(files[path]), len(files[path])) for path in self.paths]
        text = manifest_text if manifest_text is not None else write_manifest(fields, entries)
        self.manifest = text.encode()
        self.tag = hmac_sha256(key, self.manifest)
        self.id = str(hexlify(self.tag[:8]), "ascii")
        self.total = 0
        for path in self.paths:
            self.total += len(files[path])
        self.corrupt = None  # (file, chunk): that chunk goes out with a byte flipped

    def begin(self, total=None):
        size = self.total if total is None else total
        return ("ota1 %s %d %d %d" % (str(hexlify(self.tag), "ascii"), len(self.manifest), size, self.chunk)).encode()

    def data(self, file):
        return self.manifest if file == 0 else self.files[self.paths[file - 1]]

    def chunks(self, file):
        return (len(self.data(file)) + self.chunk - 1) // self.chunk

    def chunk_payload(self, file, index):
        data = self.data(file)[index * self.chunk : (index + 1) * self.chunk]
        header = bytearray(12)
        header[0:8] = self.tag[:8]
        header[8] = file >> 8
        header[9] = file & 255
        header[10] = index >> 8
        header[11] = index & 255
        body = bytearray(data)
        if self.corrupt == (file, index):
            body[0] ^= 0x01
        return bytes(header) + bytes(body)


class Published:
    """The updater's publish(): every message, kept."""

    def __init__(self):
        self.messages = []

    def __call__(self, topic, payload, qos=0, retain=False):
        if isinstance(payload, str):
            payload = payload.encode()
        self.messages.append((topic, bytes(payload), qos, retain))

    def on(self, name):
        return [m for m in self.messages if m[0] == PREFIX + name]

    def states(self):
        return [str(m[1], "utf-8") for m in self.on("state")]

    def progress(self):
        return [json.loads(m[1]) for m in self.on("progress")]

    def last_progress(self):
        found = self.progress()
        return found[-1] if found else None


class Resets:
    def __init__(self):
        self.count = 0

    def __call__(self):
        self.count += 1


_roots = []


def fresh_root(name):
    """An empty flash root of its own, under $TMPDIR or /tmp; removed when
    the test (wrapped in cleaned_up) ends."""
    root = "%s/%s/" % (getenv("TMPDIR") or "/tmp", unique_id("ota-" + name))
    remove_tree(root[:-1])
    os.mkdir(root[:-1])
    _roots.append(root[:-1])
    return root


def cleaned_up(test):
    """The test, then its flash roots removed, pass or fail."""

    def run():
        try:
            test()
        finally:
            while _roots:
                remove_tree(_roots.pop())

    return run


def remove_tree(path):
    from ota import tidy

    tidy.remove_some(path, 100000)


def write(path, data):
    from ota import fs

    fs.makedirs(path[: path.rfind("/")])
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


FACTORY = {
    "main.py": b"print('factory main')\n",
    "board.py": b"ROOM = 'kitchen'\nNODE = 'test-node'\n",
    "lib/a.mpy": b"A" * 700,
    "lib/pkg/b.mpy": b"B" * 300,
    "lib/pkg/c.mpy": b"C" * 1000,
}


def factory(root, files=FACTORY):
    for path in files:
        write(root + path, files[path])
    write(root + "deploy_manifest.json", b'{"/main.py": "x"}')


def updater(root, published=None, resets=None, **kwargs):
    from ota.updater import Updater

    settings = {"root": root, "key": KEY, "arch": "x64", "running": ""}
    for name in kwargs:
        settings[name] = kwargs[name]
    return Updater(CONFIG, published or Published(), lambda line: None, resets or Resets(), **settings)


def poll_until(u, condition, steps=2000):
    for _ in range(steps):
        if condition():
            return True
        u.poll()
    return condition()


def send_manifest(u, release):
    for index in range(release.chunks(0)):
        u.handle(PREFIX + "in/chunk", release.chunk_payload(0, index))


def wanted(u, published, timeout_ms=5000):
    """The progress report that says which files the host sends, once the
    updater has prepared (or None: refused, or never ready)."""
    from compat import ticks_add, ticks_diff, ticks_ms

    deadline = ticks_add(ticks_ms(), timeout_ms)
    while ticks_diff(deadline, ticks_ms()) > 0:
        u.poll()
        p = published.last_progress()
        if p and p["state"] == "refused":
            return None
        if p and p["state"] == "receiving" and "need" in p and not p.get("busy"):
            return p
        if p and p["state"] in ("verifying", "activating"):
            return p
    return None


def needed_files(progress, count):
    need = unhexlify(progress["need"])
    return [i + 1 for i in range(count) if need[i >> 3] & (1 << (i & 7))]


def send_files(u, release, progress, limit=-1):
    """Sends the needed files' chunks from progress's cursor on; stops after
    limit chunks (-1: all). Returns the chunks sent."""
    sent = 0
    start_file, start_chunk = progress.get("file", 0), progress.get("chunk", 0)
    for file in needed_files(progress, len(release.paths)):
        if file < start_file:
            continue
        first = start_chunk if file == start_file else 0
        for index in range(first, release.chunks(file)):
            if sent == limit:
                return sent
            u.handle(PREFIX + "in/chunk", release.chunk_payload(file, index))
            sent += 1
    return sent


def crash(u):
    """The updater stops here, as at a reset: what it wrote is on flash (a
    MicroPython write goes straight to the filesystem; CPython's buffer is
    pushed out to match), and it is never called again."""
    r = u.receiver
    if r is not None:
        for f in (r._out, r.copy.dst if r.copy is not None else None):
            if f is not None:
                f.flush()


def update(u, published, release):
    """The whole update: begin, the manifest, the files the node wants."""
    u.handle(PREFIX + "in/begin", release.begin())
    u.poll()
    send_manifest(u, release)
    progress = wanted(u, published)
    if progress is None or progress["state"] != "receiving":
        return progress
    send_files(u, release, progress)
    poll_until(u, lambda: u.receiver is None)
    u.poll()  # what became due goes out
    return published.last_progress()
