"""`make ota`: an over-the-air update of a node, through its own broker
connection (no port on the node): what `make deploy` would copy, compiled
for the board's architecture, signed with the node's key and sent in
chunks over MQTT; the node checks it, activates it, resets into it and
keeps it once it has connected and published a reading (or rolls back).

    python tools/ota.py --board pico_w [--node pico-bedroom] [--host H --port P]
    python tools/ota.py --board pico_w --serve      # offer it; install when Home Assistant asks
    python tools/ota.py --board pico_w --abort      # drop the update the node is receiving
    python tools/ota.py --new-key                   # a line for boards/secrets.py

What goes: everything make deploy writes except boot.py (it chooses and
rolls back releases: make deploy only), secrets.py and the TLS files the
board names (secrets never travel). The key: OTA_KEY in the board's
secrets file, the same one make deploy copies to the board; it signs the
manifest (HMAC-SHA256) and is never sent. Messages: lib/ota/updater.py.

Resumable: the node keeps what it received on flash and says which chunk it
wants next; run this again after a reconnect, a node reset or a host
restart and it goes on from there (the build is the same, and so is the
release's id).
"""

import argparse
import hashlib
import hmac
import importlib.util
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (ROOT, os.path.join(ROOT, "lib")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from ota import manifest as release_manifest  # noqa: E402 - the format the node reads
from ota.checks import path_error  # noqa: E402 - the node's own rules for paths
from ota.manifest_text import text as manifest_text  # noqa: E402
from tools import deploy  # noqa: E402

CHUNK = 1024  # bytes per chunk, unless the node takes less
WINDOW = 16  # chunks sent ahead of the last the node reported
STALL_S = 3.0  # no progress for this long: send again from where the node is
BEGIN_EVERY_S = 5.0  # begin again while the node says nothing (it may be resetting)
DEADLINE_S = 300
BOOTS = 3
# What make deploy writes that a release never carries: boot.py chooses and
# rolls back releases (make deploy only); secrets stay on the board.
NOT_IN_A_RELEASE = ("/boot.py", "/secrets.py", deploy.MANIFEST)


class OtaError(Exception):
    """Something the user has to fix; the message says what."""


# ---- the release -----------------------------------------------------------


def load_key(secrets_path):
    """OTA_KEY from the secrets file, as bytes."""
    if not os.path.isfile(secrets_path):
        raise OtaError(deploy.secrets_help(secrets_path))
    spec = importlib.util.spec_from_file_location("ota_secrets", secrets_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = getattr(module, "OTA_KEY", None)
    if not isinstance(text, str):
        raise OtaError(
            "%s has no OTA_KEY. Add one (python tools/ota.py --new-key prints a line to paste), then "
            "`make deploy` the board once: the node must have the key before it takes an update"
            % os.path.relpath(secrets_path, ROOT)
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise OtaError("OTA_KEY in %s must be hex digits" % secrets_path)
    if len(key) < 16:
        raise OtaError("OTA_KEY in %s must be at least 32 hex digits (16 bytes)" % secrets_path)
    return key


def git(root, *args):
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


class Release:
    """A release: its files ({path in the tree: bytes}), its manifest, the
    manifest's HMAC and the messages that carry it."""

    def __init__(self, files, header, key, chunk=CHUNK):
        self.files = files
        self.paths = sorted(files)
        self.header = header
        entries = [(path, hashlib.sha256(files[path]).hexdigest(), len(files[path])) for path in self.paths]
        self.manifest = manifest_text(header, entries).encode()
        self.tag = hmac.new(key, self.manifest, hashlib.sha256).digest()
        self.id = self.tag[:8].hex()
        self.bytes = sum(len(data) for data in files.values())
        self.chunk = chunk
        self.corrupt = None  # (file, chunk): sent with a byte flipped (the tests' corrupted chunk)

    @property
    def version(self):
        return self.header["version"]

    def begin(self, chunk=None):
        return "ota1 %s %d %d %d" % (self.tag.hex(), len(self.manifest), self.bytes, chunk or self.chunk)

    def data(self, file):
        return self.manifest if file == 0 else self.files[self.paths[file - 1]]

    def chunks(self, file, chunk=None):
        size = chunk or self.chunk
        return (len(self.data(file)) + size - 1) // size

    def chunk_payload(self, file, index, chunk=None):
        size = chunk or self.chunk
        data = bytearray(self.data(file)[index * size : (index + 1) * size])
        if self.corrupt == (file, index):
            data[len(data) // 2] ^= 0x01
        return self.tag[:8] + file.to_bytes(2, "big") + index.to_bytes(2, "big") + bytes(data)


def release_files(board_name, root=ROOT, build_dir=None, secrets_path=None, node=None):
    """{path in the release tree: local file}: what make deploy copies for
    the board, compiled for its architecture, less what never travels."""
    board = deploy.load_board(board_name, root)
    tls = {remote for _, remote in deploy.tls_files(board, root)}
    files = {}
    for local, remote in deploy.build(board_name, root, build_dir, secrets_path):
        if remote in NOT_IN_A_RELEASE or remote in tls:
            continue
        path = remote[1:]
        why = path_error(path)
        if why:
            raise OtaError("make deploy writes %s, which a release cannot carry: %s" % (remote, why))
        files[path] = local
    if node and node != board.NODE:
        # One board file for several nodes: each release's board.py names its node.
        named = os.path.join(build_dir, "board_%s.py" % node)
        with open(files["board.py"]) as f:
            text = f.read()
        with open(named, "w") as f:
            f.write(text.rstrip("\n") + "\nNODE = %r  # make ota NODE=%s\n" % (node, node))
        files["board.py"] = named
    return board, files


def build_release(args):
    """Compiles and signs the release for args.board (and args.node)."""
    root = args.root or ROOT
    board = deploy.load_board(args.board, root)
    arch = deploy.board_arch(args.board, board)
    secrets_path = args.secrets or os.path.join(root, "boards", "secrets.py")
    key = load_key(secrets_path)
    build_dir = args.build_dir or os.path.join(root, "build", args.board + "-ota")
    node = args.node or board.NODE
    board, locals_ = release_files(args.board, root, build_dir, secrets_path, node)
    contents = {}
    for path, local in locals_.items():
        with open(local, "rb") as f:
            contents[path] = f.read()
    described = git(root, "describe", "--always", "--dirty") or "unknown"
    version = args.version
    if not version:
        version = described
        if described.endswith("-dirty") or described == "unknown":
            # Uncommitted changes: the content tells releases apart.
            digest = hashlib.sha256()
            for path in sorted(contents):
                if path != "firmware_version.py":  # it will say the version: not part of it
                    digest.update(path.encode() + b"\0" + hashlib.sha256(contents[path]).digest())
            version = "%s.%s" % (described, digest.hexdigest()[:8])
    if "firmware_version.py" in contents:
        # What the node reports as its version is the release's.
        contents["firmware_version.py"] = ("VERSION = %r  # written by tools/ota.py\n" % version).encode()
    summary = args.summary or git(root, "log", "-1", "--format=%s") or "house sensor node firmware"
    if described.endswith("-dirty") and not args.summary:
        summary += " (with uncommitted changes)"
    header = {
        "version": version,
        "board": args.board,
        "node": node,
        "arch": arch,
        "deadline_s": args.deadline_s,
        "boots": args.boots,
        # The node counts bytes: cut there, at a character's end.
        "summary": " ".join(summary.split()).encode()[: release_manifest.MAX_TEXT].decode("utf-8", "ignore"),
    }
    return board, Release(contents, header, key, args.chunk)


# ---- the broker ------------------------------------------------------------


class Link:
    """A paho client on the node's topics, handing (topic, payload, live)
    to a queue; live is False for a retained message replayed at subscribe."""

    def __init__(self, host, port, base, username=None, password=None, extra=()):
        import paho.mqtt.client as mqtt

        self.base = base
        self.events = queue.Queue()
        self.connected = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id="ota-%s" % secrets.token_hex(4),
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if username:
            self.client.username_pw_set(username, password)
        self.topics = [base + "state", base + "progress", base + "installed"] + list(extra)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.events.put((m.topic, m.payload, not m.retain))
        self.client.reconnect_delay_set(1, 5)
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as e:
            raise OtaError("cannot reach the broker at %s:%d: %s" % (host, port, e))
        self.client.loop_start()
        if not self.connected.wait(10):
            self.close()
            raise OtaError("the broker at %s:%d did not accept the connection" % (host, port))

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.events.put(("", ("broker refused the connection: %s" % reason_code).encode(), True))
            return
        client.subscribe([(topic, 1) for topic in self.topics])
        self.connected.set()

    def publish(self, name, payload, qos=1, retain=False):
        self.client.publish(self.base + name, payload, qos, retain)

    def get(self, timeout):
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


# ---- sending -----------------------------------------------------------------


class Bar:
    """The progress bar: redrawn in place on a terminal, a line per quarter
    otherwise (a log, a test)."""

    def __init__(self, out, width=30):
        self.out = out
        self.width = width
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.shown = -1
        self.started = time.monotonic()
        self.sent_bytes = 0

    def show(self, done, total, note=""):
        if total <= 0:
            return
        fraction = min(1.0, done / total)
        filled = int(fraction * self.width)
        if not note:
            rate = self.sent_bytes / max(0.1, time.monotonic() - self.started) / 1024
            note = "%5.1f KB/s" % rate
        line = "[%s%s] %4d/%d chunks %s" % ("#" * filled, "-" * (self.width - filled), done, total, note)
        if self.tty:
            self.out.write("\r" + line.ljust(78))
            self.out.flush()
        elif int(fraction * 4) > self.shown or done == total and self.shown < 4:
            self.shown = 4 if done == total else int(fraction * 4)
            self.out.write(line.rstrip() + "\n")
            self.out.flush()

    def end(self):
        if self.tty:
            self.out.write("\n")
            self.out.flush()


class Sender:
    """Sends one release to one node and waits for the outcome. Exit codes:
    0 the node runs it (confirmed, or it had it already), 1 refused or
    rolled back, 2 no answer in time."""

    def __init__(self, link, release, log=print, out=None, timeout_s=600, window=WINDOW):
        self.link = link
        self.release = release
        self.log = log
        self.bar = Bar(out or sys.stdout)
        self.timeout_s = timeout_s
        self.window = window
        self.chunk = release.chunk
        self.order = []  # (file, chunk) the node wants, in its order
        self.acked = 0  # index in order of the chunk the node wants next
        self.next = 0  # index in order of the next chunk to send
        self.last_advance = time.monotonic()
        self.sent_chunks = 0
        self.activating = False
        self.answered = False  # the node said something about this release
        self.need = None
        self.heard = False  # anything from the node, retained or live

    def run(self):
        release = self.release
        deadline = time.monotonic() + self.timeout_s
        begun_at = None
        self.answered = False
        while True:
            now = time.monotonic()
            if now > deadline:
                self.bar.end()
                if self.heard:
                    self.log(
                        "ota: no outcome within %d s (is the node online? make ota again resumes)" % self.timeout_s
                    )
                else:
                    self.log(
                        "ota: the node never answered on %sstate within %d s: is it online, and does its "
                        "secrets.py hold OTA_KEY (a node without one takes no updates)?"
                        % (self.link.base, self.timeout_s)
                    )
                return 2
            if not self.answered and (begun_at is None or now - begun_at > BEGIN_EVERY_S):
                self.link.publish("in/begin", release.begin(self.chunk), 1)
                begun_at = now
            self._send_window()
            event = self.link.get(0.2)
            if event is None:
                self._maybe_rewind()
                continue
            topic, payload, live = event
            if not topic:
                raise OtaError(payload.decode())
            self.heard = True
            name = topic[len(self.link.base) :]
            if name == "progress":
                outcome = self._on_progress(json.loads(payload), live)
                if outcome is not None:
                    return outcome
                if live and not self.answered and self._about_us(json.loads(payload)):
                    self.answered = True
            elif name == "state" and live:
                outcome = self._on_state(payload.decode())
                if outcome is not None:
                    return outcome

    def _about_us(self, progress):
        return progress.get("release") == self.release.id

    def _on_progress(self, p, live):
        release = self.release
        if not live:
            # The node's last report, from before this run: its chunk size,
            # so that a release half sent earlier goes on in the same chunks.
            if p.get("max_chunk") and self.chunk > p["max_chunk"]:
                self.chunk = p["max_chunk"]
            if self._about_us(p) and p.get("chunk_size"):
                self.chunk = p["chunk_size"]
            return None
        state = p.get("state")
        if state == "refused" and p.get("release") is None and not self.answered:
            p["release"] = self.release.id  # refused before the node could tell whose (no RAM to read it)
        if not self._about_us(p):
            return None
        if state == "refused":
            self.bar.end()
            self.log("ota: refused by the node: %s" % p.get("reason"))
            return 1
        if state == "installed":
            self.bar.end()
            self.log("ota: the node already runs %s (%s)" % (release.version, release.id))
            return 0
        if state in ("trial", "activating") and not self.activating:
            self.activating = True
            self.order = None
            self.bar.end()
            self.log("ota: activating: the node resets into %s, which must connect and publish" % release.version)
        if state == "manifest":
            self._follow([(0, c) for c in range(release.chunks(0, self.chunk))], p)
        elif state == "preparing":
            self.order = []
            self.bar.show(p.get("done", 0), p.get("total", 0), "(the node copies what it has)")
        elif state == "receiving" and "need" in p:
            if self.need != p["need"]:
                self.need = p["need"]
                bits = bytes.fromhex(p["need"])
                files = [i + 1 for i in range(len(release.paths)) if bits[i >> 3] & (1 << (i & 7))]
                order = [(f, c) for f in files for c in range(release.chunks(f, self.chunk))]
                self.log(
                    "ota: the node has %d of %d files already; sending %d files, %d chunks"
                    % (len(release.paths) - len(files), len(release.paths), len(files), len(order))
                )
                self.order = order
                self.acked = self.next = 0
                wanted = (p.get("file", 0), p.get("chunk", 0))
                if order and wanted in order and order.index(wanted) > 0:
                    self.log("ota: resuming at chunk %d of %d" % (order.index(wanted), len(order)))
            if p.get("busy"):
                return None
            self._follow(self.order, p)
            self.bar.show(p["done"], p["total"])
        elif state == "verifying" and self.order is not None:
            self.order = None  # sent: the node reads it all back
            self.bar.show(1, 1)
            self.bar.end()
            self.log("ota: verifying on the node")
        return None

    def _follow(self, order, p):
        """The node wants (file, chunk): that is where sending goes on."""
        if order is None:
            return
        if order is not self.order:
            self.order = order
        wanted = (p.get("file", 0), p.get("chunk", 0))
        try:
            at = order.index(wanted)
        except ValueError:
            return
        if at > self.acked:
            self.last_advance = time.monotonic()
        self.acked = at
        if p.get("gap") or self.next < at:
            self.next = at

    def _send_window(self):
        release = self.release
        while self.order and self.next < len(self.order) and self.next < self.acked + self.window:
            file, index = self.order[self.next]
            payload = release.chunk_payload(file, index, self.chunk)
            self.link.publish("in/chunk", payload, 1)
            self.bar.sent_bytes += len(payload)
            self.sent_chunks += 1
            self.next += 1

    def _maybe_rewind(self):
        if self.order and self.next > self.acked and time.monotonic() - self.last_advance > STALL_S:
            self.next = self.acked  # chunks lost, or the node reset: again from where it is
            self.last_advance = time.monotonic()

    def _on_state(self, text):
        if text == "activating" and not self.activating:
            self.activating = True
            self.order = None
            self.bar.end()
            self.log("ota: activating: the node resets into %s" % self.release.version)
        elif text == "confirmed" and self.activating:
            self.log("ota: confirmed: the node runs %s (connected and published a reading)" % self.release.version)
            return 0
        elif text.startswith("rolled back") and self.activating:
            self.log("ota: %s" % text)
            return 1
        return None


# ---- the command ---------------------------------------------------------------


def broker_of(args, board):
    """--host/--port, else MQTT_HOST/MQTT_PORT, else a running make run's
    broker, else the board's own BROKER."""
    from tools.monitor import running_make_run

    host, port = args.host or os.environ.get("MQTT_HOST"), args.port or os.environ.get("MQTT_PORT")
    username = args.username or os.environ.get("MQTT_USERNAME")
    password = args.password or os.environ.get("MQTT_PASSWORD")
    if host is None and port is None:
        record = running_make_run()
        if record is not None:
            return record["host"], record["port"], record.get("username"), record.get("password")
        broker = getattr(board, "BROKER", {}) or {}
        host, port = broker.get("host", "127.0.0.1"), broker.get("port", 1883)
    return host or "127.0.0.1", int(port or 1883), username, password


def offer(link, release):
    """Home Assistant's latest version (and its summary), retained; the node
    passes it on in its update entity's state."""
    payload = {"latest_version": release.version, "release_summary": release.header["summary"]}
    payload["title"] = "House sensor node firmware"
    link.publish("in/offer", json.dumps(payload), 1, retain=True)


def abort(link, log):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        event = link.get(0.2)
        if event is None or not event[0].endswith("/progress"):
            continue
        p = json.loads(event[1])
        if p.get("release") and p.get("state") in ("manifest", "preparing", "receiving", "verifying"):
            link.publish("in/abort", p["release"], 1)
            log("ota: asked the node to drop release %s" % p["release"])
            return 0
    log("ota: the node is not receiving an update")
    return 0


def serve(link, release, log, timeout_s):
    """Offers the release and installs it whenever Home Assistant's update
    entity asks (its Install button publishes `install`)."""
    how = "Home Assistant's Install (`install` on %sinstall) sends it; Ctrl-C stops" % link.base
    log("ota: offering %s; %s" % (release.version, how))
    while True:
        event = link.get(1.0)
        if event is None or not event[0].endswith("/install"):
            continue
        if event[1].strip() != b"install":
            continue
        log("ota: install asked for")
        Sender(link, release, log, timeout_s=timeout_s).run()


def run(args, log=print):
    board, release = build_release(args)
    host, port, username, password = broker_of(args, board)
    prefix = getattr(board, "PREFIX", "house")
    base = "%s/%s/%s/ota/" % (prefix, board.ROOM, release.header["node"])
    log(
        "ota: board %s (%s), node %s, release %s (%s): %d files, %.1f KB, broker %s:%d"
        % (args.board, release.header["arch"], release.header["node"], release.version, release.id,
           len(release.paths), release.bytes / 1024, host, port)
    )  # fmt: skip
    link = Link(host, port, base, username, password, extra=[base + "install"] if args.serve else ())
    try:
        if args.abort:
            return abort(link, log)
        offer(link, release)
        if args.serve:
            return serve(link, release, log, args.timeout)
        return Sender(link, release, log, timeout_s=args.timeout).run()
    finally:
        link.close()


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", help="a board file in boards/ (e.g. esp32_devkit, pico_w)")
    p.add_argument("--node", help="the node to update, when it is not the board file's NODE")
    p.add_argument("--host", help="the broker (default: MQTT_HOST, a running make run's, else the board's)")
    p.add_argument("--port", type=int, help="its port (default: MQTT_PORT, ... else the board's)")
    p.add_argument("--username", help="a broker user who may publish to the node's ota/in topics")
    p.add_argument("--password")
    p.add_argument("--secrets", help="the board's secrets file, with OTA_KEY (default: boards/secrets.py)")
    p.add_argument("--version", help="the release's version (default: git describe, plus a content hash if dirty)")
    p.add_argument("--summary", help="the release summary Home Assistant shows (default: the last commit's subject)")
    p.add_argument("--deadline-s", type=int, default=DEADLINE_S, help="to connect and publish, per boot (default 300)")
    p.add_argument("--boots", type=int, default=BOOTS, help="boots on trial before a rollback (default 3)")
    p.add_argument("--chunk", type=int, default=CHUNK, help="bytes per chunk (default 1024)")
    p.add_argument("--timeout", type=float, default=900, help="give up after this many seconds (default 900)")
    p.add_argument("--serve", action="store_true", help="offer the release; install when Home Assistant asks")
    p.add_argument("--abort", action="store_true", help="drop the update the node is receiving")
    p.add_argument("--new-key", action="store_true", help="print a new OTA_KEY line for a secrets file")
    p.add_argument("--root", help="the project tree to build from (default: this one)")
    p.add_argument("--build-dir", help="where the .mpy files go (default: build/<board>-ota)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.new_key:
        print("OTA_KEY = %r  # tools/ota.py --new-key: one per node; keep it secret" % secrets.token_hex(32))
        return 0
    if not args.board:
        parser().error("--board is required")
    lo, hi = release_manifest.DEADLINE_S
    if not lo <= args.deadline_s <= hi:
        parser().error("--deadline-s must be %d to %d" % (lo, hi))
    if not release_manifest.BOOTS[0] <= args.boots <= release_manifest.BOOTS[1]:
        parser().error("--boots must be %d to %d" % release_manifest.BOOTS)
    try:
        return run(args)
    except (OtaError, deploy.DeployError) as e:
        print("ota: error: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nota: stopped (make ota again resumes where the node is)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
