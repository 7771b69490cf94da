# What the updater tells (see ota.updater for the topics), loaded when
# something is due and forgotten after: the state text, the sender's
# progress report and Home Assistant's installed version, each within the
# board's packets. What sets them (an outcome, the host's offer) is
# ota.outcome, loaded only when there is one.

import json

from compat import const, ticks_diff, ticks_ms

_PROGRESS_GAP_MS = const(250)  # progress of flash work on the node: at most this often


def publish_due(u):
    # The regular reports first, then a one-off note (a refusal, an
    # outcome): the last message on a topic is the one that stands.
    if u.announce:
        ok = _send(u, "state", state_text(u), 1, True)
        ok = ok and _send_installed(u)
        ok = ok and _send_progress(u, progress(u), True)
        if not ok:
            return
        u.announce = u.installed_due = u.progress_due = False
    if u.installed_due and _send_installed(u):
        u.installed_due = False
    if u.progress_due:
        r = u.receiver
        if r is not None:
            # The state when it changes; the progress at most every
            # _PROGRESS_GAP_MS while the node works on its own (the copy and
            # verify passes), at once when the host is to be told something.
            text = r.state_text()
            changed = text != u.last_state or r.phase != u.last_phase
            now = ticks_ms()
            # 0 <=: a mark 2**29 ms (6.2 days) or more ago reads negative on a board: long ago, not just now.
            if not changed and not r.gap and 0 <= ticks_diff(now, u.progress_at) < _PROGRESS_GAP_MS:
                return
            if changed and not _send(u, "state", text, 0, True):
                return
            u.last_state = text
            u.last_phase = r.phase
            u.progress_at = now
        if not _send_progress(u, progress(u), True):
            return
        u.progress_due = False
        if r is not None:
            r.gap = False
    if u.note is not None:
        text, retain = u.note
        if not _send(u, "state", text, 1 if retain else 0, retain):
            return
        u.note = None
    if u.note_progress is not None and _send_progress(u, u.note_progress[0], u.note_progress[1]):
        u.note_progress = None


def _room(u, name, qos):
    # Payload bytes a message on name can carry: a QoS 1 message is kept for
    # resending within the client's max_packet; QoS 0 goes out of its
    # transmit buffer (at least 512 bytes). The fixed header, lengths and
    # packet id take at most 9.
    limit = u.max_message if qos or u.max_message > 512 else 512
    return limit - len(u.base) - len(name) - 9


def _send(u, name, payload, qos, retain):
    data = payload.encode() if isinstance(payload, str) else payload
    room = _room(u, name, qos)
    if len(data) > room:
        # Text from the host (a version, a reason naming a path) longer than
        # the board's packets: cut, at a character's start, never left
        # waiting (the messages after it would wait behind it for good).
        while room > 0 and data[room] & 0xC0 == 0x80:
            room -= 1
        data = data[:room]
    try:
        u.publish(u.base + name, data, qos, retain)
        return True
    except (OSError, ValueError):
        return False  # not connected, the in-flight table or output queue full: at the next poll


def _send_json(u, name, d, qos, retain, optional, long_keys):
    # JSON cut anywhere is no JSON: optional texts go, long ones are shortened.
    room = _room(u, name, qos)
    text = json.dumps(d)
    for key in optional:
        if len(text.encode()) <= room:
            break
        d.pop(key, None)
        text = json.dumps(d)
    for keep in (24, 4):
        for key in long_keys:
            if len(text.encode()) <= room:
                break
            if key in d:
                d[key] = d[key][:keep]
                text = json.dumps(d)
    return _send(u, name, text, qos, retain)


def _send_installed(u):
    from ota.outcome import installed

    return _send_json(
        u, "installed", installed(u), 1, True, ("release_summary", "title"), ("latest_version", "installed_version")
    )


def _send_progress(u, d, retain):
    d["installed"] = u.pointer["version"]
    d["max_chunk"] = u.max_chunk
    return _send_json(u, "progress", d, 0, retain, (), ("reason", "installed"))


def state_text(u):
    if u.receiver is not None:
        return u.receiver.state_text()
    if u.handoff is not None:
        return "receiving manifest" if u.handoff[1] == "check" else u.last_state or "receiving"
    if u.resetting or u.on_trial:
        return "activating"
    return u.pointer["outcome"] or "idle"


def progress(u):
    if u.receiver is not None:
        return u.receiver.progress()
    if u.handoff is not None:
        return {"state": "preparing", "release": u.handoff[0]}
    if u.resetting or u.on_trial:
        return {"state": "activating" if u.resetting else "trial", "release": u.pointer["active"]}
    return {"state": "idle", "release": None}
