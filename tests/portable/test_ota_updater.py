# The updater (lib/ota/updater.py) fed an update in-process, as the node's
# message callback feeds it: real files in a flash root of its own, real
# SHA-256 and HMAC. A release is received, checked and activated by one
# pointer write; it resumes from what is on flash after a reset; and each
# thing that must be refused is, with its reason, leaving the running
# release and the pointer as they were. Runs on CPython, the Unix port (and
# under a Pico W's heap) and the 32-bit runtime.
import gc
import json

from ota import pointer
from ota_sender import (
    FACTORY,
    KEY,
    PREFIX,
    Published,
    Release,
    Resets,
    cleaned_up,
    crash,
    factory,
    fresh_root,
    poll_until,
    read,
    send_files,
    send_manifest,
    update,
    updater,
    wanted,
    write,
)
from support import heap_locked

# Under a Pico W's free RAM too: the updater, the receiver it loads, and
# this module's releases and records share it (the node's own test modules
# are held to the same size).
SMALL_HEAP = "pico_w"

NEW = {
    "main.py": FACTORY["main.py"],  # unchanged: copied on the node, not sent
    "board.py": b"ROOM = 'kitchen'\nNODE = 'test-node'\nBUFFER = 64\n",  # changed
    "lib/a.mpy": FACTORY["lib/a.mpy"],  # unchanged
    "lib/pkg/b.mpy": bytes(range(256)) * 3,  # changed: 3 chunks of 256
    "lib/new.mpy": b"N" * 600,  # new
    "lib/empty.mpy": b"",  # new and empty
}
BUSY = 0  # poll() returns 0 while flash work waits


def snapshot(root):
    """What must not change when an update is refused: the pointer and the
    running files."""
    files = {}
    for path in FACTORY:
        files[path] = read(root + path)
    return pointer.load(root), files


def folders(root):
    from ota import tidy

    return sorted(name for name in tidy.listdir(root + pointer.FOLDER[:-1]) if name != "pointer")


def receiving(name, with_snapshot=False):
    """A flash root with the factory release, an updater, and release NEW
    begun with its manifest sent: (root, published, u, release, the
    progress asking for the first file[, the snapshot from before])."""
    root = fresh_root(name)
    factory(root)
    before = snapshot(root)
    published = Published()
    u = updater(root, published)
    release = Release(NEW)
    u.handle(PREFIX + "in/begin", release.begin())
    send_manifest(u, release)
    progress = wanted(u, published)
    return (root, published, u, release, progress, before) if with_snapshot else (root, published, u, release, progress)


@cleaned_up
def test_a_release_is_received_checked_and_activated():
    root = fresh_root("full")
    factory(root)
    published, resets = Published(), Resets()
    u = updater(root, published, resets)
    release = Release(NEW)
    progress = update(u, published, release)
    assert progress["state"] == "activating", published.messages[-5:]
    p = pointer.load(root)
    assert p["active"] == release.id and p["trial"] and p["version"] == "2.0"
    assert p["previous"] == "" and p["max_boots"] == 3 and p["deadline_s"] == 300
    tree = pointer.tree(root, release.id)
    for path in NEW:
        assert read(tree + path) == NEW[path], path
    # The running files are untouched; the reset comes after "activating" has gone out.
    assert read(root + "board.py") == FACTORY["board.py"]
    assert resets.count == 0
    poll_until(u, lambda: resets.count == 1, steps=100000)
    states = []
    for state in published.states():
        if not states or states[-1] != state:
            states.append(state)
    assert states[:2] == ["receiving manifest", "receiving 0/11"], states
    counts = [int(s[10:-3]) for s in states[1:-2]]
    assert counts == sorted(counts) and states[-3].endswith("/11"), states
    assert states[-2:] == ["verifying", "activating"], states


@cleaned_up
def test_only_the_files_the_node_lacks_are_sent():
    root, published, u, release, progress = receiving("need")
    # paths sorted: board.py, lib/a.mpy, lib/empty.mpy, lib/new.mpy, lib/pkg/b.mpy, main.py
    from ota_sender import needed_files

    assert needed_files(progress, len(release.paths)) == [1, 4, 5]
    assert progress["total"] == 1 + 3 + 0 + 3 + 3 + 1  # chunks of 256 B in every file
    assert progress["done"] == 3 + 1  # lib/a.mpy and main.py, copied from the running release


@cleaned_up
def test_an_update_resumes_after_a_reset_from_what_is_on_flash():
    root, published, u, release, progress = receiving("resume")
    assert send_files(u, release, progress, limit=3) == 3  # board.py and 2 of lib/new.mpy's 3 chunks
    crash(u)
    # The reset: a new updater on the same flash, fed nothing yet.
    published = Published()
    u = updater(root, published)
    u.on_connect()
    progress = wanted(u, published)
    assert progress["release"] == release.id
    assert (progress["file"], progress["chunk"]) == (4, 2), progress
    assert progress["done"] == 4 + 1 + 2
    # The host sends begin again (it restarted too): the same release, resumed.
    u.handle(PREFIX + "in/begin", release.begin())
    send_files(u, release, progress)
    poll_until(u, lambda: u.resetting)
    assert pointer.load(root)["active"] == release.id


@cleaned_up
def test_a_torn_last_chunk_is_cut_off_when_resuming():
    root, published, u, release, progress = receiving("torn")
    send_files(u, release, progress, limit=2)  # board.py, lib/new.mpy's first chunk
    crash(u)
    part = pointer.tree(root, release.id) + "lib/new.mpy.part"
    with open(part, "ab") as f:
        f.write(b"half a chunk")  # the reset came in the middle of a write
    published = Published()
    u = updater(root, published)
    u.on_connect()
    progress = wanted(u, published)
    assert (progress["file"], progress["chunk"]) == (4, 1), progress
    send_files(u, release, progress)
    poll_until(u, lambda: u.resetting)
    assert read(pointer.tree(root, release.id) + "lib/new.mpy") == NEW["lib/new.mpy"]


@cleaned_up
def test_chunks_out_of_order_are_ignored_and_the_gap_reported():
    root, published, u, release, progress = receiving("gap")
    u.handle(PREFIX + "in/chunk", release.chunk_payload(4, 1))  # lib/new.mpy's second: too early
    u.poll()
    gap = published.last_progress()
    assert gap.get("gap") and (gap["file"], gap["chunk"]) == (1, 0), gap
    u.handle(PREFIX + "in/chunk", release.chunk_payload(1, 0))
    u.handle(PREFIX + "in/chunk", release.chunk_payload(1, 0))  # a resend: ignored
    u.poll()
    assert published.last_progress()["file"] == 4
    send_files(u, release, published.last_progress())
    poll_until(u, lambda: u.resetting)
    assert pointer.load(root)["active"] == release.id


def _a_week_before(now):
    from compat import ticks_add

    return ticks_add(ticks_add(now, -4 * 86400000), -3 * 86400000)  # ticks_add takes under 6.2 days at once


def test_progress_last_told_a_week_ago_is_told_again():
    # On a board ticks wrap at 2**30 ms: ticks_diff reads a mark 6.2 days or
    # more ago as negative, which is long ago too, not "within the gap".
    from compat import ticks_ms

    root, published, u, release, progress = receiving("progressweek")
    reports = len(published.progress())
    u.progress_at = _a_week_before(ticks_ms())
    u.progress_due = True  # as flash work on the node sets it, with the state unchanged
    u.poll()
    assert len(published.progress()) == reports + 1, published.progress()[-2:]


# ---- refused, and nothing changed ----------------------------------------------


def refused(name, release, free=None, begin=None, **settings):
    """Runs the update; returns the reason it was refused, after checking
    that the running release and the pointer did not change and that
    nothing of the release is left on flash."""
    gc.collect()
    root = fresh_root(name)
    factory(root)
    before = snapshot(root)
    published = Published()
    if free is not None:
        settings["free_bytes"] = lambda path: (free, 4096)
    u = updater(root, published, **settings)
    u.handle(PREFIX + "in/begin", begin or release.begin())
    u.poll()
    send_manifest(u, release)
    progress = wanted(u, published)
    if progress is not None and progress["state"] == "receiving":
        send_files(u, release, progress)
    poll_until(u, lambda: u.receiver is None)
    # Refused: never taken up again after a reset, even before the janitor
    # has removed its files a few per poll.
    from ota import fs

    assert not fs.exists(root + pointer.FOLDER + release.id + "/begin")
    poll_until(u, lambda: u.poll() != BUSY)
    last = published.last_progress()
    assert last["state"] == "refused", published.messages[-4:]
    assert snapshot(root) == before
    assert folders(root) == [], folders(root)
    assert published.states()[-1] == "refused: " + last["reason"]
    return last["reason"]


@cleaned_up
def test_a_manifest_signed_with_another_key_is_refused():
    assert "bad HMAC" in refused("key", Release(NEW, key=b"x" * 32))


@cleaned_up
def test_a_corrupted_chunk_is_refused():
    release = Release(NEW)
    release.corrupt = (5, 1)  # a byte of lib/pkg/b.mpy's second chunk
    reason = refused("corrupt", release)
    assert "lib/pkg/b.mpy: SHA-256 does not match" in reason, reason


@cleaned_up
def test_a_truncated_manifest_is_refused():
    whole = Release(NEW).manifest.decode()
    cut = whole[: whole.index("end ")]
    # Signed that way (a host bug): the HMAC holds, the end line is missing.
    assert "manifest truncated" in refused("cut-signed", Release(NEW, manifest_text=cut))
    # Cut on the way, under the whole manifest's HMAC.
    release = Release(NEW, manifest_text=cut)
    release.tag = Release(NEW).tag
    assert "bad HMAC" in refused("cut", release)


@cleaned_up
def test_a_release_for_another_node_or_architecture_is_refused():
    assert "release for node kitchen-2" in refused("node", Release(NEW, node="kitchen-2"))
    reason = refused("arch", Release(NEW, board="esp32_devkit", arch="xtensawin"))
    assert reason == "release for board esp32_devkit compiled for xtensawin: this board runs x64", reason


@cleaned_up
def test_a_release_that_reaches_outside_its_tree_or_carries_secrets_is_refused():
    outside = dict(NEW)
    outside["lib/../../boot.py"] = b"evil"
    assert "outside the release tree" in refused("outside", Release(NEW, manifest_text=manifest_with(outside)))
    secret = dict(NEW)
    secret["secrets.py"] = b"OTA_KEY = 'mine'"
    assert "overwrite or shadow secrets.py" in refused("secrets", Release(secret))


def manifest_with(files):
    # manifest_text() sorts and writes whatever it is given: a host that
    # does not check (the node does).
    from ota.manifest_text import text
    from ota_sender import sha_hex

    entries = [(path, sha_hex(files[path]), len(files[path])) for path in files]
    header = {"version": "2.0", "board": "unix", "node": "test-node", "arch": "x64"}
    header.update({"deadline_s": 300, "boots": 3, "summary": "s"})
    return text(header, entries)


@cleaned_up
def test_a_release_bigger_than_the_free_flash_is_refused_before_its_first_chunk():
    release = Release(NEW)
    # Announced size alone (begin): refused before anything is written.
    reason = refused("full", release, free=4096)
    assert reason.startswith("release needs ") and "KB of flash, 4 KB are free" in reason, reason
    # Room for the announcement, not for the files plus a block each: refused
    # once the manifest is in, before any file chunk.
    reason = refused("tight", release, free=release.total + len(release.manifest) + 9 * 4096)
    assert "KB of flash" in reason, reason


@cleaned_up
def test_a_second_update_while_one_runs_is_refused_and_the_first_goes_on():
    root = fresh_root("second")
    factory(root)
    published = Published()
    u = updater(root, published)
    first = Release(NEW)
    u.handle(PREFIX + "in/begin", first.begin())
    send_manifest(u, first)
    progress = wanted(u, published)
    other = Release({"main.py": b"print(3)\n", "board.py": b"ROOM = 'x'\n"}, version="3.0")
    u.handle(PREFIX + "in/begin", other.begin())
    u.poll()
    refusal = published.progress()[-1]
    assert refusal["state"] == "refused" and refusal["release"] == other.id
    assert refusal["reason"].startswith("busy: receiving release %s" % first.id), refusal
    state = published.on("state")[-1]
    assert state[1].startswith(b"refused: busy") and not state[3]  # not retained: the first keeps its state
    send_files(u, first, progress)
    poll_until(u, lambda: u.resetting)
    assert pointer.load(root)["active"] == first.id


@cleaned_up
def test_without_a_key_updates_are_off():
    root = fresh_root("nokey")
    factory(root)
    published = Published()
    u = updater(root, published, key="")
    assert u.key is None
    u.handle(PREFIX + "in/begin", Release(NEW).begin())
    u.poll()
    assert "no valid OTA_KEY" in published.last_progress()["reason"]
    assert folders(root) == []


# ---- after the reset: trial, confirm ------------------------------------------------


def activated(name):
    root = fresh_root(name)
    factory(root)
    published = Published()
    u = updater(root, published)
    release = Release(NEW)
    update(u, published, release)
    return root, release


@cleaned_up
def test_confirm_keeps_the_release_and_removes_the_previous_one():
    root, first = activated("confirm")
    # The first boot of the release: the updater of the release on trial.
    published = Published()
    u = updater(root, published, running=first.id)
    assert u.on_trial
    u.on_connect()
    u.poll()
    assert published.states()[-1] == "activating"
    u.confirm()
    p = pointer.load(root)
    assert not p["trial"] and p["active"] == first.id and p["outcome"] == "confirmed" and p["previous"] is None
    # A second update: the first release becomes previous, and goes once the
    # second is confirmed. (A fresh record of messages: the test shares a
    # board-sized heap with what it checks.)
    first_id = first.id
    first = None
    published.messages = []
    gc.collect()
    files = {"main.py": b"print(3)\n", "board.py": NEW["board.py"], "lib/pkg/c.mpy": b"D" * 900}
    second = Release(files, version="3.0")
    update(u, published, second)
    p = pointer.load(root)
    assert p["active"] == second.id and p["previous"] == first_id
    u = updater(root, Published(), running=second.id)
    u.confirm()
    poll_until(u, lambda: u.poll() != BUSY)
    assert folders(root) == [second.id]


@cleaned_up
def test_the_installed_version_and_the_hosts_offer_go_to_home_assistant():
    root, release = activated("offer")
    published = Published()
    u = updater(root, published, running=release.id)
    u.confirm()
    offer = {"latest_version": "3.0", "release_summary": "Faster", "title": "House node firmware"}
    u.handle(PREFIX + "in/offer", json.dumps(offer).encode())
    u.poll()
    installed = json.loads(published.on("installed")[-1][1])
    assert installed == {
        "installed_version": "2.0",
        "latest_version": "3.0",
        "release_summary": "Faster",
        "title": "House node firmware",
    }
    assert published.on("installed")[-1][3]  # retained


@cleaned_up
def test_the_same_release_again_is_reported_installed():
    root, release = activated("again")
    published = Published()
    u = updater(root, published, running=release.id)
    u.confirm()
    u.handle(PREFIX + "in/begin", release.begin())
    u.poll()
    assert published.last_progress()["state"] == "installed"


@cleaned_up
def test_leftovers_are_removed_a_few_at_a_time():
    root = fresh_root("janitor")
    factory(root)
    for i in range(20):
        write(root + pointer.FOLDER + "0123456789abcdef/lib/f%d.mpy" % i, b"x")
    write(root + pointer.NAME + ".tmp", b"{")
    u = updater(root)
    steps = 0
    while u.poll() == BUSY and steps < 100:
        steps += 1
    assert folders(root) == []
    assert 3 <= steps < 100  # 8 removals per poll: the loop is never held for long


@cleaned_up
def test_polling_while_idle_allocates_nothing():
    root = fresh_root("idle")
    factory(root)
    u = updater(root)
    u.poll()
    assert heap_locked(u.poll) == 60000
    assert KEY  # (the key every release here is signed with)


@cleaned_up
def test_the_host_can_abort_the_release_being_received():
    root, published, u, release, progress, before = receiving("abort", with_snapshot=True)
    u.handle(PREFIX + "in/abort", b"0000000000000000")  # another release's: ignored
    assert u.receiver is not None
    u.handle(PREFIX + "in/abort", release.id.encode())
    poll_until(u, lambda: u.poll() != BUSY)
    assert u.receiver is None and folders(root) == [] and snapshot(root) == before
    assert published.last_progress()["aborted"] == release.id
    assert published.states()[-1] == "idle"


@cleaned_up
def test_a_payload_that_is_not_text_or_an_error_nobody_expected_never_stops_the_node():
    root, published, u, release, progress, before = receiving("garbage", with_snapshot=True)
    assert u.handle(PREFIX + "in/abort", b"\xff\xfe not utf-8")  # compared as bytes: not this release's
    assert u.receiver is not None

    def broken(payload):
        raise KeyError("a defect")

    u.receiver.chunk = broken
    assert u.handle(PREFIX + "in/chunk", release.chunk_payload(1, 0))  # the update is refused, not the loop stopped
    poll_until(u, lambda: u.poll() != BUSY)
    assert u.receiver is None and folders(root) == [] and snapshot(root) == before
    assert "unexpected error" in published.last_progress()["reason"]


class BoundedPublish(Published):
    """publish() refusing what the client refuses: a QoS 1 message over
    max_packet, a QoS 0 one over the 512-byte transmit buffer."""

    def __init__(self, max_packet):
        super().__init__()
        self.max_packet = max_packet

    def __call__(self, topic, payload, qos=0, retain=False):
        size = 5 + len(topic) + len(payload) + (2 if qos else 0)
        if size > (self.max_packet if qos else 512):
            raise ValueError("a PUBLISH of %d bytes does not fit" % size)
        super().__call__(topic, payload, qos, retain)


@cleaned_up
def test_texts_from_the_host_are_cut_to_the_boards_packets_and_nothing_waits_behind_them():
    root, release = activated("long-offer")
    published = BoundedPublish(192)
    u = updater(root, published, running=release.id, max_message=192)
    u.confirm()
    u.poll()
    long_text = "Größere Änderung " * 12  # 204 characters, more bytes: non-ASCII
    offer = {"latest_version": "ü" * 150, "release_summary": long_text, "title": long_text}
    u.handle(PREFIX + "in/offer", json.dumps(offer).encode())
    u.poll()
    installed = json.loads(published.on("installed")[-1][1])  # JSON still: texts shortened, not cut mid-way
    assert installed["installed_version"] == "2.0" and installed["latest_version"].startswith("ü")
    assert not u.installed_due and not u.announce
    # A refusal naming a long path is cut at a character's start and the
    # progress report after it still goes out.
    u.handle(PREFIX + "in/begin", b"ota1 " + "é".encode() * 300)
    u.poll()
    assert published.states()[-1].startswith("refused: ")
    assert len(published.on("state")[-1][1]) <= 192
    assert published.last_progress()["state"] == "refused"


@cleaned_up
def test_a_begin_whose_manifest_never_came_whole_holds_no_update_back():
    root = fresh_root("stale")
    factory(root)
    published = Published()
    u = updater(root, published)
    stale = Release({"main.py": b"print(3)\n", "board.py": b"ROOM = 'x'\n"}, version="3.0")
    u.handle(PREFIX + "in/begin", stale.begin())  # and then nothing: a host gone, or not a key's holder
    u.poll()
    release = Release(NEW)
    u.handle(PREFIX + "in/begin", release.begin())
    assert u.receiver is not None and u.receiver.release == release.id
    from ota import fs

    stale_folder = root + pointer.FOLDER + stale.id
    assert not fs.exists(stale_folder + "/begin") and u.janitor == [stale_folder]  # removed once the update is done
    send_manifest(u, release)
    send_files(u, release, wanted(u, published))
    poll_until(u, lambda: u.resetting)
    assert pointer.load(root)["active"] == release.id
