# Over-the-air updates through the node's own MQTT connection: the node's
# side. The node owns the client; this owns the update. The seam:
#
#   ota = Updater(config, client.publish, log, request_reboot)
#   client.subscribe(ota.topic_filter, 1); ota.on_connect()   # in on_connect
#   if ota.handle(message.topic, message.payload): return     # in on_message
#   wait = min(wait, ota.poll())                              # in the loop
#   if node_published_a_reading and ota.on_trial: ota.confirm()
#
# and the client's receive buffer must hold a chunk: rx_size=RX_SIZE.
#
# This class stays in RAM for as long as the node runs, so it is only the
# seam: topics, flags, and what is due. The work is in modules loaded when
# there is some and forgotten when there is none (a board's heap is the
# node's): ota.report (state, progress, Home Assistant's installed
# version), ota.upkeep (start-up recovery, removals, confirm), and for a
# release coming in ota.begin, then ota.prepare (manifest, ota.checks, the
# copy pass), then ota.receiver (files, verify, activate), the two halves
# never in RAM together; ota.manifest, ota.hmac256, ota.pointer and ota.fs
# under them.
"""Topics, under <prefix>/<room>/<node>/ota/:

in/begin   "ota1 <HMAC-SHA256 of the manifest, 64 hex> <manifest bytes> <release bytes> <chunk bytes>"
           The release's id is the HMAC's first 16 hex digits.
in/chunk   a 12-byte header, then the data: the release id's first 8
           bytes, the file (u16; 0 is the manifest, n the manifest's n-th
           file) and the chunk's index (u16), big-endian. Every chunk of a
           file has `chunk` bytes but its last. QoS 1, not retained.
in/abort   "<release id>": the release being received is dropped.
in/offer   retained JSON from the host (latest_version, release_summary,
           title), passed on to Home Assistant in `installed`.

state      retained text: idle | receiving manifest | receiving n/m |
           verifying | activating | confirmed | rolled back: <why> |
           refused: <why> (a refused begin while another update runs is
           not retained: the running one keeps its state)
progress   JSON for the sender: state, release, file and chunk (the next
           wanted), done and total (chunks), need (hex bitmap of the
           manifest's files the host must send), installed, max_chunk, gap
installed  retained JSON for Home Assistant's update entity:
           installed_version, latest_version, title, release_summary
"""

import gc
import sys

from compat import const, ticks_diff, ticks_ms

CHUNK_MAX = const(1024)
# The client's receive buffer for a chunk of CHUNK_MAX: its 12-byte header,
# a topic of up to 200 bytes, the packet id and the fixed header.
RX_SIZE = const(1248)
_IDLE_MS = const(60000)
_ON_DEMAND = (
    "ota.receiver",
    "ota.stage",
    "ota.begin",
    "ota.prepare",
    "ota.checks",
    "ota.errors",
    "ota.manifest",
    "ota.hmac256",
    "ota.report",
    "ota.outcome",
    "ota.upkeep",
    "ota.pointer",
    "ota.tidy",
    "ota.fs",
)


def forget_module(name):
    """Drops a module of the ota package from RAM: what only one step of an
    update needs."""
    sys.modules.pop(name, None)
    package = sys.modules.get("ota")
    if package is not None and hasattr(package, name[4:]):
        delattr(package, name[4:])


class Updater:
    # (release, next step) of an update handed over through flash, taken up
    # at the next poll; set by ota.prepare, ota.checks and ota.upkeep.
    handoff: "tuple | None" = None

    def __init__(
        self,
        config,
        publish,
        log=print,
        reset=None,
        root=None,
        key=None,
        arch=None,
        running=None,
        max_chunk=CHUNK_MAX,
        free_bytes=None,
        max_message=512,
    ):
        """config: the node's (PREFIX, ROOM, NODE). publish(topic, payload,
        qos, retain): the client's. reset(): restart the board (the node's
        orderly reboot). For tests: root (the flash root; else from the
        working directory), key (bytes; else secrets.OTA_KEY, hex), arch
        (else this runtime's), running (the release that runs; else from the
        working directory), free_bytes(root) -> (bytes free, block size).
        max_message: the client's max_packet (the board's MAX_PACKET)."""
        self.base = "%s/%s/%s/ota/" % (config["PREFIX"], config["ROOM"], config["NODE"])
        self.topic_filter = self.base + "in/+"
        self.node = config["NODE"]
        self.publish = publish
        self.log = log
        self.reset = reset
        self.max_chunk = max_chunk if max_chunk < CHUNK_MAX else CHUNK_MAX
        self.max_message = max_message  # the client's max_packet: what a QoS 1 message may take
        self.free_bytes = free_bytes  # None: ota.tidy.free_bytes
        self.pointer = None  # the pointer file's dict (ota.pointer)
        self.folder = None  # <root>ota-releases/: the releases, the pointer
        self.on_trial = False  # this boot runs the release activated last, not yet confirmed
        self.receiver = None  # while a release comes in: ota.prepare.Intake, then ota.receiver.Receiver
        self.handoff = None  # (release, next step): taken up from flash at the next poll
        self.janitor = []  # folders nothing refers to: removed a few entries per poll
        self.resetting = False
        self.reset_at = 0
        self.offer = None  # the host's offer: latest_version, release_summary, title
        self.announce = False
        self.progress_due = False
        self.installed_due = False
        self.note = None  # (state text, retained): published once
        self.note_progress = None  # (dict, retained): published once
        self.last_state = None  # the state text published last while a release came in
        self.last_phase = 0  # and the phase of the update then
        self.progress_at = 0  # when progress was published last (ticks)
        try:
            from ota import upkeep

            upkeep.start(self, root, key, arch, running)  # root, running, key, arch, pointer
        except (OSError, MemoryError) as e:
            # The node must start whatever its flash or heap say: without
            # updates this boot (a release on trial then rolls back).
            self.log("ota: updates are off this boot: %r" % (e,))
            self.key = None
            self.root = root or "/"
            self.folder = self.root + "ota-releases/"
            self.pointer = {"version": "?", "active": "", "trial": False, "outcome": None}
            self.receiver = None
            self.janitor = []
        self.forget()

    # ---- the seam ------------------------------------------------------

    def on_connect(self):
        """After every connect (and subscribe): state, progress and the
        installed version go out again, retained."""
        self.announce = True

    def handle(self, topic, payload):
        """A message from the client. True if it was the updater's (the node
        then ignores it). Never raises: what goes wrong refuses the update."""
        base = self.base
        if not (topic.startswith(base) and topic.startswith("in/", len(base))):
            return False
        kind = topic[len(base) + 3 :]
        try:
            if kind == "chunk":
                if self.receiver is not None:
                    self.receiver.chunk(payload)
            elif kind == "begin":
                self.receive(payload)
            elif kind == "abort":
                if self.receiver is not None:
                    self.receiver.abort(payload)
            elif kind == "offer":
                from ota import outcome

                outcome.offer(self, payload)
            else:
                self.log("ota: ignored %r (known: begin, chunk, abort, offer)" % kind)
        except OSError as e:  # flash, while a release was being started
            from ota import outcome

            outcome.refused(self, None, "flash error: %r" % (e,))
        except MemoryError:
            self._out_of_memory()
        except Exception as e:  # noqa: BLE001 - a message must never stop the node's loop
            self._refuse(e)
        return True

    def _refuse(self, error):
        # Raised where nothing expected it: the update in hand is dropped
        # (its files go, a few per poll) and the node goes on.
        from ota import outcome

        release = None
        if self.receiver is not None:
            release = self.receiver.release
            try:
                self.receiver.discard()  # its files closed and removed
            except Exception:  # noqa: BLE001
                self.janitor.append(self.folder + release)
        outcome.refused(self, release, "unexpected error: %r" % (error,))

    def _out_of_memory(self, release=None):
        # What an update needs in RAM is not there: it is refused, never the
        # node's loop stopped (a begin the broker keeps resending would stop
        # it at every connect). Its files go, a few per poll.
        if self.receiver is not None:
            release = self.receiver.release
        if release is not None:
            self.janitor.append(self.folder + release)
        self.receiver = None
        why = "not enough free RAM for an update"
        self.note = ("refused: " + why, True)
        self.note_progress = ({"state": "refused", "release": release, "reason": why}, True)
        self.forget_all()
        gc.collect()
        self.log("ota: update refused: not enough free RAM (%d bytes free)" % gc.mem_free())

    def poll(self):
        """One bounded step of flash work and the messages that are due;
        returns ms until it wants to be called again (0: work waits). Idle,
        it allocates nothing."""
        if self.announce or self.progress_due or self.installed_due or self.note or self.note_progress:
            try:
                from ota import report

                report.publish_due(self)
            except MemoryError:
                self._out_of_memory()
            self.forget()
        if self.handoff is not None:
            (release, step), self.handoff = self.handoff, None
            self.forget_all()  # one step's code goes before the next one's comes
            gc.collect()
            try:
                self.receive(None, release, step)
            except MemoryError:
                self._out_of_memory(release)
            return 0
        if self.receiver is not None:
            try:
                return self.receiver.poll()
            except MemoryError:
                self._out_of_memory()
                return 0
        if self.resetting:
            left = ticks_diff(self.reset_at, ticks_ms())
            if left > 0:
                return left
            self.resetting = False
            if self.reset is not None:
                self.reset()
            else:
                self.log("ota: no reset here: the release runs after the next reset")
            return _IDLE_MS
        if self.janitor:
            try:
                from ota import upkeep

                upkeep.clean_step(self)
            except MemoryError:
                return _IDLE_MS  # later, with more room
            self.forget()
            return 0
        return _IDLE_MS

    def confirm(self):
        """The release on trial connected and published a reading: it stays.
        The previous release's files go, a few per poll."""
        if not self.on_trial:
            return
        self.on_trial = False
        try:
            from ota import upkeep

            upkeep.confirm(self)
        except (OSError, MemoryError) as e:
            self.on_trial = True  # again at the next reading: unconfirmed, it would be rolled back
            self.log("ota: could not confirm yet: %r" % (e,))
        self.forget()

    def receive(self, payload, resume=None, step=None):
        """A begin message; or, with resume, the next step of a release
        half received: "check" its manifest, "prepare" (the copy pass),
        "receive" (the files), "manifest" (after a reset in it)."""
        if step == "receive":
            from ota import receiver

            return receiver.resume(self, resume)
        if step == "check":
            from ota import checks

            return checks.run(self, resume)
        from ota import begin

        try:
            return begin.begin(self, payload, resume)
        finally:
            forget_module("ota.begin")

    def forget(self):
        """The code for flash work and reports leaves RAM while there is
        none to do (as main.py forgets node.config once the board is loaded)."""
        if self.receiver is not None or self.handoff or self.janitor or self.note or self.note_progress:
            return
        if self.announce or self.progress_due or self.installed_due:
            return
        self.forget_all()

    def forget_all(self):
        for name in _ON_DEMAND:
            forget_module(name)
