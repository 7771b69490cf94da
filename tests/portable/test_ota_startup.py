# What boot.py decides at every reset (lib/ota/startup.py), on real files:
# the release on trial gets max_boots boots and a deadline per boot to
# confirm, then the previous release runs again; a make deploy after an
# update wins; a release whose files are gone is not booted. The deadline's
# timer choice runs here against a fake machine.Timer; the real timer and
# the switch of sys.path and working directory run in the firmware tests
# (tests/test_ota_e2e.py).
import sys

from ota import deadline, pointer, startup
from ota_sender import cleaned_up, fresh_root, write

RELEASE = "0123456789abcdef"
OLDER = "fedcba9876543210"


def board(name, previous=""):
    """A flash root: the deployed files, release RELEASE activated on trial
    (3 boots, 60 s), previous as the one to go back to."""
    root = fresh_root(name)
    write(root + "main.py", b"deployed")
    write(root + "deploy_manifest.json", b'{"/main.py": "ab"}')
    write(root + "firmware_version.py", b"VERSION = '594e9f6'  # written by tools/deploy.py\n")
    for release in (RELEASE, OLDER):
        write(pointer.tree(root, release) + "main.py", b"release")
    p = pointer.fresh(root, pointer.deploy_stamp(root))
    p.update({"active": RELEASE, "version": "2.0", "previous": previous, "trial": True, "max_boots": 3})
    p["previous_version"] = "1.0" if previous else p["version"]
    if not previous:
        p["previous_version"] = pointer.deployed_version(root, p["deploy"])
    pointer.save(root, p)
    return root


@cleaned_up
def test_no_pointer_runs_the_deployed_files():
    root = fresh_root("none")
    assert startup.choose(root) == (root, None)


@cleaned_up
def test_a_release_on_trial_boots_until_its_boots_run_out_then_the_previous_one_runs():
    root = board("boots", previous=OLDER)
    for boot in (1, 2, 3):
        tree, p = startup.choose(root)
        assert tree == pointer.tree(root, RELEASE) and p["trial"] and p["boots"] == boot
        assert pointer.load(root)["boots"] == boot  # counted on flash, before main.py runs
    tree, p = startup.choose(root)
    assert tree == pointer.tree(root, OLDER)
    assert not p["trial"] and p["active"] == OLDER and p["version"] == "1.0" and p["failed"] == RELEASE
    assert p["outcome"] == "rolled back: release 2.0 did not confirm (connect and publish a reading) in 3 boots"
    assert pointer.load(root) == p
    # And it stays rolled back.
    assert startup.choose(root)[0] == pointer.tree(root, OLDER)


@cleaned_up
def test_rolled_back_to_the_deployed_files_says_their_version():
    root = board("deployed")
    for _ in range(4):
        tree, p = startup.choose(root)
    assert tree == root and p["active"] == "" and p["version"] == "594e9f6"


@cleaned_up
def test_a_confirmed_release_boots_without_counting():
    root = board("confirmed")
    p = pointer.load(root)
    p["trial"] = False
    pointer.save(root, p)
    for _ in range(5):
        tree, p = startup.choose(root)
        assert tree == pointer.tree(root, RELEASE) and p["boots"] == 0


@cleaned_up
def test_the_deadline_rolls_back_a_release_still_on_trial_only():
    root = board("deadline", previous=OLDER)
    startup.choose(root)
    assert not deadline.expire(root, OLDER, 60)  # not the one on trial
    assert deadline.expire(root, RELEASE, 60)
    p = pointer.load(root)
    assert p["active"] == OLDER and not p["trial"]
    assert p["outcome"] == "rolled back: release 2.0 did not connect and publish a reading within 60 s"
    assert not deadline.expire(root, RELEASE, 60)  # once


@cleaned_up
def test_a_confirmed_release_is_not_rolled_back_by_its_deadline():
    root = board("in-time")
    p = pointer.load(root)
    p["trial"] = False
    pointer.save(root, p)
    assert not deadline.expire(root, RELEASE, 60)
    assert pointer.load(root)["active"] == RELEASE


@cleaned_up
def test_make_deploy_after_an_update_wins():
    root = board("deploy")
    write(root + "deploy_manifest.json", b'{"/main.py": "cd"}')  # a deploy rewrote it
    tree, p = startup.choose(root)
    assert tree == root and p["active"] == "" and not p["trial"]
    assert p["outcome"] == "make deploy replaced release 2.0"


@cleaned_up
def test_a_release_whose_files_are_gone_is_not_booted():
    root = board("gone", previous=OLDER)
    from ota import fs

    fs.remove(pointer.tree(root, RELEASE) + "main.py")
    tree, p = startup.choose(root)
    assert tree == pointer.tree(root, OLDER) and p["outcome"] == "rolled back: release 2.0 is missing its main.py"
    fs.remove(pointer.tree(root, OLDER) + "main.py")
    tree, p = startup.choose(root)
    assert tree == root and p["active"] == ""


@cleaned_up
def test_an_unreadable_pointer_runs_the_deployed_files():
    root = board("torn")
    write(root + pointer.NAME, b'{"format": 1, "act')
    assert startup.choose(root) == (root, None)


def test_the_root_is_found_from_a_releases_working_directory():
    assert pointer.root_of("/") == "/"
    assert pointer.root_of("/ota-releases/" + RELEASE) == "/"
    assert pointer.root_of("/tmp/flash/ota-releases/" + RELEASE) == "/tmp/flash/"
    assert pointer.root_of("/tmp/ota-releases/flash") == "/tmp/ota-releases/flash/"  # not a release's folder


def test_the_deadline_writes_the_pointer_as_ota_pointer_reads_it():
    # ota.deadline rolls back with json and os alone (it must not depend on
    # the ota package a release may have broken): the same folder, the
    # same fields.
    assert pointer.NAME == "ota-releases/pointer"


class FakeTimer:
    """machine.Timer as an ESP32-C3 before MicroPython 1.26 has it: -1 is
    taken when made and refused at init (ESP_ERR_INVALID_ARG)."""

    ONE_SHOT = 0
    PERIODIC = 1
    made = []

    def __init__(self, timer_id):
        self.id = timer_id
        self.inits = []
        FakeTimer.made.append(self)

    def init(self, mode, period, callback):
        if self.id == -1:
            raise OSError(258)
        self.inits.append((mode, period))

    def deinit(self):
        pass


class FakeMachine:
    Timer = FakeTimer


class FullSchedule:
    """micropython.schedule with its queue full."""

    @staticmethod
    def schedule(function, argument):
        raise RuntimeError("schedule queue full")


def with_modules(modules, run):
    saved = {name: sys.modules.get(name) for name in modules}
    for name in modules:
        sys.modules[name] = modules[name]
    try:
        run()
    finally:
        for name in saved:
            if saved[name] is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = saved[name]
        deadline.disarm()


def test_the_deadline_takes_a_hardware_timer_where_a_virtual_one_is_refused_at_init():
    FakeTimer.made = []
    with_modules({"machine": FakeMachine}, lambda: deadline.arm("/nowhere/", RELEASE, 300))
    assert [t.id for t in FakeTimer.made] == [-1, 0]
    assert FakeTimer.made[1].inits == [(FakeTimer.ONE_SHOT, 300000)]


def test_a_full_schedule_queue_tries_the_deadline_again_a_second_later():
    timer = FakeTimer(0)
    with_modules({"micropython": FullSchedule}, lambda: deadline._fire(timer))
    assert timer.inits == [(FakeTimer.ONE_SHOT, 1000)]  # not lost: the board stays on the way back
