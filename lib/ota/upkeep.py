# What the updater does with flash outside an update, loaded for it and
# forgotten after (ota.updater keeps only the seam in RAM): where it runs
# and with which key, reading the pointer at start-up, resuming a release
# half received, removing folders nothing refers to any more, and
# confirming the release on trial.

import os
import sys
from binascii import unhexlify

from compat import const
from ota import fs, pointer, tidy

_REMOVE_PER_POLL = const(8)
# sys.implementation._mpy >> 10: the native architecture (py/persistentcode.h)
_ARCHS = ("", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensa", "xtensawin")


def runtime_arch():
    """The mpy-cross -march this MicroPython runs, or None where unknown
    (CPython, a port without native code)."""
    mpy = getattr(sys.implementation, "_mpy", None)
    if mpy is None:
        return None
    index = mpy >> 10
    return (_ARCHS[index] or None) if index < len(_ARCHS) else None


def parse_key(text):
    """OTA_KEY: at least 32 hex digits (16 bytes; tools/ota.py --new-key
    makes 64). The key, None, or a ValueError saying what is wrong."""
    if text is None:
        return None
    if not isinstance(text, str) or len(text) < 32 or len(text) % 2:
        raise ValueError("secrets OTA_KEY must be a string of at least 32 hex digits, an even number of them")
    try:
        return unhexlify(text)
    except ValueError:
        raise ValueError("secrets OTA_KEY must be hex digits")


def _key_from_secrets():
    try:
        import secrets  # the board's /secrets.py (git-ignored, never sent)  # pyright: ignore[reportMissingImports]
    except ImportError:
        return None
    return getattr(secrets, "OTA_KEY", None)


def start(u, root, key, arch, running):
    """Where u runs (root, running release), with which key and for which
    architecture; the pointer; and what is on flash: a release half
    received is resumed, folders nothing refers to any more are queued
    for removal."""
    cwd = os.getcwd() if root is None or running is None else ""
    u.root = root if root is not None else pointer.root_of(cwd)
    if running is None:
        # boot.py made /ota-releases/<id> the working directory of release <id>.
        here = cwd if cwd.endswith("/") else cwd + "/"
        inside = u.root + pointer.FOLDER
        running = here[len(inside) : -1] if here.startswith(inside) else ""
        running = running if pointer.is_release_id(running) else ""
    u.running = running
    u.folder = u.root + pointer.FOLDER
    if key is None:
        try:
            key = parse_key(_key_from_secrets())
        except ValueError as e:
            u.log("ota: %s: updates are off" % e)
    u.key = key or None
    u.arch = arch if arch is not None else runtime_arch()
    p = pointer.load(u.root) or pointer.fresh(u.root, pointer.deploy_stamp(u.root))
    u.pointer = p
    # On trial: this boot runs the release activated last and not yet
    # confirmed (ota.startup chose it and armed its deadline).
    u.on_trial = p["trial"] and p["active"] == u.running
    folder = u.root + pointer.FOLDER
    for name in tidy.listdir(folder[:-1]):
        path = folder + name
        if name == "pointer" or name == p["active"] or name == p["previous"]:
            continue
        if u.handoff is None and name != p["failed"] and fs.exists(path + "/begin"):
            if pointer.is_release_id(name):
                # Picked up at the first poll, from the step it had reached.
                if fs.exists(path + "/need"):
                    u.handoff = (name, "receive")
                elif fs.exists(path + "/checked"):
                    u.handoff = (name, "prepare")
                elif fs.exists(path + "/release.txt"):
                    u.handoff = (name, "check")
                else:
                    u.handoff = (name, "manifest")
                u.log("ota: release %s was coming in: going on from flash (%s)" % (name, u.handoff[1]))
                continue
        u.janitor.append(path)


def clean_step(u):
    """Removes a few entries of the first folder queued."""
    folder = u.janitor[0]
    try:
        if tidy.remove_some(folder, _REMOVE_PER_POLL):
            u.janitor.pop(0)
    except OSError as e:
        u.log("ota: cannot remove %s: %r" % (folder, e))
        u.janitor.pop(0)


def confirm(u):
    """The release on trial stays; the previous one goes (a few entries
    per poll). Nothing, if it was rolled back meanwhile (its deadline)."""
    p = pointer.load(u.root) or u.pointer
    if not p["trial"] or p["active"] != u.running:
        return
    previous = p["previous"]
    p["trial"] = False
    p["boots"] = 0
    p["previous"] = None
    p["previous_version"] = None
    p["outcome"] = "confirmed"
    pointer.save(u.root, p)
    u.pointer = p
    boot = sys.modules.get("_ota_boot")  # ota.startup, holding the deadline's timer
    if boot is not None:
        boot.disarm()
    if previous:
        u.janitor.append(u.root + pointer.FOLDER + previous)
    from ota import outcome

    outcome.confirmed(u)
