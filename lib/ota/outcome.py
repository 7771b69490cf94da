# How an update ends or changes course (refused, aborted, activated,
# confirmed), the host's offer, and Home Assistant's installed version:
# they set what ota.report publishes next. Loaded when one happens, so
# that the receiving half of an update does not hold it.

import json

from compat import const, ticks_add, ticks_ms

_RESET_AFTER_MS = const(500)  # for "activating" to leave before the reset
_TEXT_MAX = const(200)


def installed(u):
    version = u.pointer["version"]
    offer = u.offer or {}
    d = {"installed_version": version, "latest_version": offer.get("latest_version") or version}
    for key in ("title", "release_summary"):
        if key in offer:
            d[key] = offer[key]
    return d


def offer(u, payload):
    """The host's offer (retained): passed on to Home Assistant."""
    try:
        found = json.loads(payload)
    except ValueError:
        return
    if not isinstance(found, dict) or not isinstance(found.get("latest_version"), str):
        return
    kept = {}
    for key in ("latest_version", "release_summary", "title"):
        value = found.get(key)
        if isinstance(value, str):
            kept[key] = value[:_TEXT_MAX]
    u.offer = kept
    u.installed_due = True


def failed(stage, error):
    """A release coming in (ota.prepare, ota.receiver) refused: its files go."""
    from ota.errors import ManifestError

    reason = str(error) if isinstance(error, ManifestError) else "flash error: %r" % (error,)
    stage.discard()
    refused(stage.u, stage.release, reason)


def refused(u, release, reason, retain=True):
    """An update is refused. Retained when it ends the update that was
    running; a begin refused while another runs is not."""
    u.log("ota: release %s refused: %s" % (release, reason))
    u.note = ("refused: " + reason, retain)
    u.note_progress = ({"state": "refused", "release": release, "reason": reason}, retain)
    if retain or u.receiver is None:
        u.receiver = None


def reply(u, release, state):
    u.note_progress = ({"state": state, "release": release}, False)


def aborted(u, release):
    u.log("ota: release %s aborted by the host" % release)
    u.receiver = None
    u.note = (u.pointer["outcome"] or "idle", True)
    u.note_progress = ({"state": "idle", "aborted": release}, False)


def activated(u, p):
    """The pointer now names the new release, on trial: reset into it."""
    u.pointer = p
    u.receiver = None
    u.log("ota: release %s (%s) activated: resetting into it" % (p["version"], p["active"]))
    u.resetting = True
    u.reset_at = ticks_add(ticks_ms(), _RESET_AFTER_MS)
    u.note = ("activating", True)
    u.progress_due = True


def confirmed(u):
    u.log("ota: release %s confirmed" % u.pointer["version"])
    u.note = ("confirmed", True)
    u.installed_due = True
    u.progress_due = True
