# The deadline of a release on trial: armed by ota.startup at boot, kept in
# RAM (as sys.modules["_ota_boot"]) for as long as the release is on trial,
# disarmed by the updater's confirm(). When it passes first, the release is
# rolled back and the board reset. Self-contained (os and json only): it
# must work whatever the release did to the ota package, and it is all a
# trial boot keeps of the boot-time code.

import json
import os
import sys

_root = None
_release = None
_deadline_s = 0
_timer = None


def arm(root, release, deadline_s):
    global _root, _release, _deadline_s, _timer
    import machine

    _root, _release, _deadline_s = root, release, deadline_s
    try:
        timer = _start(machine, -1, deadline_s * 1000)  # a virtual timer: RP2040, newer ESP32 ports, the Unix fake
    except (ValueError, OSError, TypeError):
        # ESP32 up to 1.26: hardware timers only (the ESP32-C3 refuses -1 at init, not at construction).
        timer = _start(machine, 0, deadline_s * 1000)
    _timer = timer
    sys.modules["_ota_boot"] = sys.modules[__name__]


def _start(machine, timer_id, period_ms):
    timer = machine.Timer(timer_id)
    timer.init(mode=machine.Timer.ONE_SHOT, period=period_ms, callback=_fire)
    return timer


def disarm():
    global _timer
    if _timer is not None:
        _timer.deinit()
        _timer = None
    sys.modules.pop("_ota_boot", None)


def _fire(timer):
    # Possibly in an interrupt: file writes wait for the VM.
    try:
        from micropython import schedule
    except ImportError:
        _expire(None)
        return
    try:
        schedule(_expire, None)
    except RuntimeError:  # the schedule queue is full: try again in a second
        timer.init(mode=timer.ONE_SHOT, period=1000, callback=_fire)


def _expire(_):
    try:
        rolled_back = expire(_root, _release, _deadline_s)
    except OSError as e:
        # The pointer could not be written: reset all the same, and the boot
        # counter rolls the release back within its boots.
        print("ota: deadline: %r: resetting" % (e,))
        rolled_back = True
    if rolled_back:
        import machine

        machine.reset()


def expire(root, release, deadline_s):
    """The deadline of release's boot passed: True, and the release rolled
    back (ota.pointer's format, written as ota.pointer writes it), unless
    it was confirmed in time."""
    path = root + "ota-releases/pointer"
    try:
        with open(path) as f:
            p = json.loads(f.read())
    except (OSError, ValueError):
        return False
    if not isinstance(p, dict) or not p.get("trial") or p.get("active") != release:
        return False
    why = "release %s did not connect and publish a reading within %d s" % (p.get("version"), deadline_s)
    p["failed"] = release
    p["active"] = p.get("previous") or ""
    p["version"] = p.get("previous_version") or p.get("version")
    p["previous"] = p["previous_version"] = None
    p["trial"] = False
    p["boots"] = 0
    p["outcome"] = "rolled back: " + why
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(p))
    os.rename(path + ".tmp", path)
    print("ota: %s: resetting" % p["outcome"])
    return True
