"""Over-the-air updates end to end: firmware/main.py on the MicroPython
Unix port, run from a flash folder that make deploy's files were copied to
(tests/ota_board.py plays the board: boot.py, then main.py; a reset ends the
process and the test starts it again), a private mosquitto, and
tools/ota.py as make ota runs it. Real files, real SHA-256 and HMAC, real
resets."""

import os
import shutil
import time

import pytest

from harness import micropython
from ota_support import (
    KEY,
    OTA_BASE,
    ROOT,
    Board,
    Watcher,
    install,
    pointer,
    release_folders,
    run_ota,
    secrets_file,
    tree,
    wait_until,
)
from tools import deploy
from tools import ota as ota_tool

BOOT_S = 20  # for a node to start, connect and publish (the suite runs beside it)


@pytest.fixture
def house(tmp_path, make_broker):
    """A broker, a watcher, and a board installed from a project tree whose
    every lib/ module differs from this one's (so an update sends them all)."""
    broker = make_broker()
    old = tree(tmp_path, "old", lib_header="# the build before this one")
    secrets = secrets_file(str(tmp_path))
    flash = str(tmp_path / "flash")
    install(flash, old, secrets, str(tmp_path / "build-old"))
    watcher = Watcher(broker)
    boards = []

    class House:
        pass

    h = House()
    h.broker, h.watcher, h.flash, h.secrets, h.tmp = broker, watcher, flash, secrets, tmp_path
    h.old = old

    def start(**kwargs):
        board = Board(flash, broker, **kwargs)
        boards.append(board)
        return board

    h.start = start
    yield h
    for board in boards:
        board.stop()
    watcher.close()


def ota(h, *args, project=ROOT, timeout=120):
    args = ("--timeout", str(timeout - 10)) + args
    return run_ota(project, h.secrets, h.broker, str(h.tmp / "build-ota"), *args, timeout=timeout)


def started(h, board, after=0.0):
    """The node connected and published a reading (after `after`)."""

    def up():
        connected = board.find("mqtt: connected", after) is not None
        return connected and h.watcher.reading_after(after) and h.watcher.installed() is not None

    ok = wait_until(up, BOOT_S)
    assert ok, board.output()


def test_a_full_update_of_lib_runs_as_the_new_version(house):
    board = house.start()
    started(house, board)
    assert house.watcher.installed()["installed_version"] == "unknown"  # the copied tree is no git checkout
    t0 = time.monotonic()
    status, output = ota(house, "--version", "2.0-test", "--summary", "The whole of lib/, new")
    assert status == 0, output + board.output()
    # Every module of lib/ went (but the empty __init__ ones, the same .mpy
    # whatever their comments), with main.py, board.py and firmware_version.py.
    files = len(deploy.build("unix", ROOT, str(house.tmp / "count"), house.secrets)) - 2  # less boot.py, secrets.py
    have = int(output.split("the node has ")[1].split(" of %d files" % files)[0])
    assert have <= 5, output  # main.py, board.py and empty __init__ modules
    assert "ota: confirmed: the node runs 2.0-test" in output, output
    # The node runs the release from its own folder, and publishes as the new version.
    p = pointer(house.flash)
    assert p["version"] == "2.0-test" and not p["trial"] and p["outcome"] == "confirmed"
    assert release_folders(house.flash) == [p["active"]]  # the deployed files stay in /, nothing else is left
    assert board.find("ota: running release 2.0-test (%s) on trial" % p["active"], t0), board.output()
    # Every module from the release, compat too (boot.py's ota code loaded the deployed one first).
    release_lib = "ota-releases/%s/lib/" % p["active"]
    modules = [line for t, _, line in board.lines if t >= t0 and line.startswith("OTA-MODULES")]
    assert modules and modules[0].count(release_lib) == 2, board.output()
    done = time.monotonic()
    assert wait_until(lambda: house.watcher.reading_after(done), BOOT_S)
    installed = house.watcher.installed()
    assert installed["installed_version"] == "2.0-test"
    assert installed["latest_version"] == "2.0-test"
    assert installed["release_summary"] == "The whole of lib/, new"
    states = house.watcher.states()
    assert "receiving manifest" in states and "verifying" in states and "activating" in states, states
    assert states[-1] == "confirmed", states
    assert any(s.startswith("receiving ") and s.endswith("/%d" % _chunks(output)) for s in states), states


def _chunks(output):
    for line in output.splitlines():
        if "chunks" in line and line.startswith("["):
            return int(line.split("]")[1].split("/")[1].split()[0])
    return -1


# ---- refused, and nothing changed ------------------------------------------------


def sender(house, log):
    """tools/ota.py's Release and Sender in-process, for a release made
    wrong on purpose."""
    args = ota_tool.parser().parse_args(
        ["--board", "unix", "--secrets", house.secrets, "--build-dir", str(house.tmp / "build-ota"), "--version", "bad"]
    )
    _, release = ota_tool.build_release(args)
    link = ota_tool.Link("127.0.0.1", house.broker.port, OTA_BASE)
    return release, link


def test_a_wrong_key_a_corrupted_chunk_and_a_truncated_manifest_are_refused(house, tmp_path):
    board = house.start()
    started(house, board)
    before = house.watcher.installed()
    # Signed with another key: the node's OTA_KEY is not the host's.
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    status, output = run_ota(ROOT, secrets_file(str(wrong), key="77" * 32), house.broker, str(tmp_path / "b1"))
    assert status == 1, output
    assert "refused by the node: bad HMAC: the manifest is not signed with this node's OTA_KEY" in output, output

    lines = []
    release, link = sender(house, lines.append)
    try:
        # A chunk of lib/node/node.mpy altered on the way.
        release.corrupt = (release.paths.index("lib/node/node.mpy") + 1, 2)
        assert ota_tool.Sender(link, release, lines.append, timeout_s=60).run() == 1
        assert "refused by the node: file lib/node/node.mpy: SHA-256 does not match the manifest" in lines[-1], lines
        # A manifest cut short (and signed that way: the HMAC holds).
        release.corrupt = None
        cut = release.manifest[: release.manifest.index(b"\nend ") + 1]
        release.manifest = cut
        release.tag = ota_tool.hmac.new(bytes.fromhex(KEY), cut, "sha256").digest()
        release.id = release.tag[:8].hex()
        assert ota_tool.Sender(link, release, lines.append, timeout_s=60).run() == 1
        assert "refused by the node: manifest truncated: no end line after" in lines[-1], lines
    finally:
        link.close()
    # Nothing changed: the same version runs, publishing, with nothing left of the releases.
    assert house.watcher.installed()["installed_version"] == before["installed_version"]
    assert pointer(house.flash) is None
    assert wait_until(lambda: release_folders(house.flash) == [], 10), release_folders(house.flash)  # a few per poll
    now = time.monotonic()
    assert wait_until(lambda: house.watcher.reading_after(now), BOOT_S)
    assert board.starts == 1, board.output()  # and it never reset
    refusals = [s for s in house.watcher.states() if s.startswith("refused: ")]
    assert len(refusals) == 3, house.watcher.states()


# ---- rolled back ------------------------------------------------------------------


def rolled_back(house, project, deadline_s, boots=3):
    board = house.start()
    started(house, board)
    t0 = time.monotonic()
    status, output = ota(house, "--version", "bad-1", "--deadline-s", str(deadline_s), "--boots", str(boots),
                         project=project, timeout=120)  # fmt: skip
    took = time.monotonic() - t0
    assert status == 1, output + board.output()
    p = pointer(house.flash)
    assert p["active"] == "" and not p["trial"] and p["version"] == "unknown", p
    # The failed release's files go, a few per poll of the node that is back.
    assert wait_until(lambda: release_folders(house.flash) == [], 10), release_folders(house.flash)
    # The deployed files run again, and publish.
    now = time.monotonic()
    assert wait_until(lambda: house.watcher.reading_after(now), BOOT_S), board.output()
    assert house.watcher.installed()["installed_version"] == "unknown"
    return output, took, board, p


def test_a_release_whose_main_raises_at_import_is_rolled_back_at_its_deadline(house, tmp_path):
    broken = tree(tmp_path, "broken", main_prefix="raise ImportError('this release cannot start')\n")
    output, took, board, p = rolled_back(house, broken, deadline_s=3)
    assert "ota: rolled back: release bad-1 did not connect and publish a reading within 3 s" in output, output
    assert p["outcome"] == "rolled back: release bad-1 did not connect and publish a reading within 3 s"
    assert board.find("this release cannot start") and board.find("at the REPL, as a board would be")
    activated = board.find("ota: running release bad-1")
    back = board.find("ota: rolled back: release bad-1")
    assert activated and back and 2.5 <= back - activated < 3 + 5, board.output()  # host-side times of the lines


def test_a_release_that_never_connects_is_rolled_back_at_its_deadline(house, tmp_path):
    # Its broker setting is wrong: it runs, reads, and never gets through.
    deaf = tree(tmp_path, "deaf", main_prefix="import os\nos.putenv('MQTT_PORT', '1')\n")
    output, took, board, p = rolled_back(house, deaf, deadline_s=4)
    assert "did not connect and publish a reading within 4 s" in p["outcome"], p
    activated = board.find("ota: running release bad-1")
    back = board.find("ota: rolled back: release bad-1")
    assert activated and back and 3.5 <= back - activated < 4 + 5, board.output()


def test_a_release_that_resets_in_a_loop_is_rolled_back_after_its_boots(house, tmp_path):
    looping = tree(tmp_path, "loop", main_source="import machine\nmachine.reset()\n")
    output, took, board, p = rolled_back(house, looping, deadline_s=60, boots=2)
    assert p["outcome"] == "rolled back: release bad-1 did not confirm (connect and publish a reading) in 2 boots", p
    assert took < 30, output  # long before its deadline


# ---- resumed -------------------------------------------------------------------------


def test_an_update_resumes_after_the_host_is_killed(house):
    board = house.start()
    started(house, board)
    first = run_ota(ROOT, house.secrets, house.broker, str(house.tmp / "build-ota"), "--version", "2.1-test",
                    "--chunk", "256", background=True)  # fmt: skip
    seen = []
    for line in first.stdout:
        seen.append(line)
        if line.startswith("[#"):  # a quarter sent: the host dies
            first.kill()
            break
    first.wait(timeout=10)
    assert first.returncode == -9, "".join(seen)
    status, output = ota(house, "--version", "2.1-test", "--chunk", "256")
    assert status == 0, output + board.output()
    resumed = [line for line in output.splitlines() if line.startswith("ota: resuming at chunk ")]
    assert resumed and int(resumed[0].split()[4]) > 0, output
    assert board.starts == 2  # the node never reset for it: only into the release
    assert wait_until(lambda: house.watcher.installed()["installed_version"] == "2.1-test", BOOT_S)


# ---- a Pico W's heap --------------------------------------------------------------


# The board of tests/test_node_small_heap.py, with one sensor and the small
# buffers the node's own Pico W-heap tests use (tests/portable/
# node_harness.py), and no Wi-Fi: on the 64-bit port, node.wifi, the DNS
# resolver and the fake network take 9 KB more, and the node then leaves
# 22 KB free after connecting, less than an update's code needs there (the
# README has the figures). What is left of the heap is the update's; it
# comes in 256-byte chunks.
SMALL_BOARD = """
MODEL = "small heap test"
ROOM = "kitchen"
NODE = "unix-node"
BROKER = {"host": "127.0.0.1", "port": 1883, "keepalive_s": 10}
SENSORS = [
    {"driver": "sim_temperature", "period_s": 1, "qos": 1, "params": {"seed": 1}},
]
BUFFER = 16
INFLIGHT = 4
MAX_PACKET = 256
DIAGNOSTICS_S = 5
WATCHDOG_MS = 8000
DISCOVERY = False  # Home Assistant's configs: their own cost, measured by their own tests
"""


def test_an_update_under_a_pico_w_heap(house, capsys):
    # The board installed and sent: the small one, in both the old tree and this one.
    small = tree(house.tmp, "small-new")
    with open(os.path.join(small, "boards", "unix.py"), "w") as f:
        f.write(SMALL_BOARD)
    with open(os.path.join(house.old, "boards", "unix.py"), "w") as f:
        f.write(SMALL_BOARD)
    install(house.flash, house.old, house.secrets, str(house.tmp / "build-small"))
    board = house.start(env={"OTA_HEAP": "1"}, heapsize=micropython.HEAP_PICO_W)
    started(house, board)
    status, output = ota(house, "--version", "2.2-test", "--chunk", "256", project=small)
    assert status == 0, output + board.output()
    assert "MemoryError" not in board.output(100000), board.output()
    idle = [line for _, start, line in board.lines if start == 1 and line.startswith("OTA-HEAP idle")]
    update = [line for _, start, line in board.lines if start == 1 and line.startswith("OTA-HEAP update")]
    assert idle and update, board.output()
    figures = dict(part.split("=") for part in (idle[-1] + " " + update[-1]).split() if "=" in part)
    report = (
        "Pico W heap (%s, 64-bit Unix port): node idle, updater loaded: %s B live, %s B free; "
        "while receiving: peak %s B used (garbage included), %s B live after a collection"
        % (micropython.HEAP_PICO_W, figures["live"], figures["free"], figures["peak"], figures["live_peak"])
    )
    with capsys.disabled():
        print("\n" + report)
    heap = 160 * 1024
    assert int(figures["peak"]) < heap and int(figures["live_peak"]) < heap


# ---- through TLS ----------------------------------------------------------------------


def tls_board(project, ca):
    """The project's unix board, connecting through TLS and checking the
    broker against ca (a host path, which is also where the Unix port finds
    it: deploy copies boards/tls/<name> to that path on a board)."""
    shutil.copyfile(ca, os.path.join(project, "boards", "tls", os.path.basename(ca)))
    with open(os.path.join(project, "boards", "unix.py"), "a") as f:
        f.write("BROKER = %r\n" % {"host": "127.0.0.1", "port": 8883, "tls": True, "ca": ca})


def test_an_update_reaches_a_node_that_talks_to_its_broker_through_tls(tls_broker, tls_files, tmp_path):
    """Every chunk, the manifest and the confirmation go over the node's TLS
    link (make ota uses the broker's plain listener on the host), and the
    release, whose board file keeps TLS, connects through it again."""
    ca = str(tls_files["ca"])
    projects = []
    for name, header in (("old", "# the build before this one"), ("new", None)):
        project = tree(tmp_path, name, lib_header=header)
        os.makedirs(os.path.join(project, "boards", "tls"), exist_ok=True)
        tls_board(project, ca)
        projects.append(project)
    secrets = secrets_file(str(tmp_path))
    flash = str(tmp_path / "flash")
    install(flash, projects[0], secrets, str(tmp_path / "build-old"))
    watcher = Watcher(tls_broker)
    board = Board(flash, tls_broker, env={"MQTT_PORT": str(tls_broker.tls_port)})
    try:
        handshake = "TLS handshake with 127.0.0.1:%d" % tls_broker.tls_port
        up = wait_until(lambda: board.find(handshake) is not None and watcher.reading_after(0), BOOT_S)
        assert up, board.output()
        status, output = run_ota(
            projects[1], secrets, tls_broker, str(tmp_path / "build-ota"), "--version", "2.3-tls", timeout=120
        )
        assert status == 0, output + board.output()
        assert "ota: confirmed: the node runs 2.3-tls" in output, output
        p = pointer(flash)
        assert p["version"] == "2.3-tls" and p["outcome"] == "confirmed", p
        # The release connected through TLS too, and publishes.
        restarted = board.find("ota: running release 2.3-tls")
        assert restarted is not None, board.output()
        assert board.find(handshake, restarted) is not None, board.output()
        done = time.monotonic()
        assert wait_until(lambda: watcher.reading_after(done), BOOT_S), board.output()
    finally:
        board.stop()
        watcher.close()


# ---- Home Assistant ------------------------------------------------------------------


def test_home_assistants_install_runs_the_update_and_its_entity_follows(house):
    board = house.start()
    started(house, board)
    serving = run_ota(ROOT, house.secrets, house.broker, str(house.tmp / "build-ota"), "--serve", "--version",
                      "3.0-ha", "--summary", "Offered to Home Assistant", background=True)  # fmt: skip
    try:
        # The node passes the host's offer on: Home Assistant shows an update.
        def offered():
            installed = house.watcher.installed()
            return installed and installed.get("latest_version") == "3.0-ha"

        assert wait_until(offered, 30), house.watcher.installed()
        installed = house.watcher.installed()
        assert installed["installed_version"] == "unknown"
        assert installed["release_summary"] == "Offered to Home Assistant"
        # Its Install button publishes payload_install on command_topic.
        house.watcher.client.publish(OTA_BASE + "install", "install", 1)
        done = lambda: house.watcher.installed()["installed_version"] == "3.0-ha"  # noqa: E731
        assert wait_until(done, 60), board.output()
        assert house.watcher.installed()["latest_version"] == "3.0-ha"
        assert house.watcher.states()[-1] == "confirmed"
    finally:
        serving.kill()  # by its pid: it serves until stopped
        serving.wait(timeout=10)
