# A begin message: the update starts, or is refused before anything is
# written (ota.prepare.Intake then takes the manifest). Loaded for the
# message and forgotten after it; also resumes an intake after a reset.

from binascii import hexlify, unhexlify

from compat import const
from ota import fs
from ota.updater import forget_module

_ID_BYTES = const(8)
_CHUNK_MIN = const(64)
MAX_MANIFEST_BYTES = const(65536)  # ota.manifest's, without loading it (a test checks they agree)
_UNVERIFIED = const(1)  # ota.prepare's phase while the manifest comes in: its HMAC unchecked
MAX_FILES = const(512)  # ota.manifest's


def begin(u, payload, resume):
    """Starts taking the release a begin message announces (or, with
    resume, the release of that id half taken before a reset) for updater
    u. True if it runs; a refusal is reported through u."""
    from ota import prepare

    running = u.folder + u.pointer["active"] + "/" if u.pointer["active"] else u.root
    if resume is not None:
        folder = u.folder + resume + "/"
        fields = begin_fields(fs.read_small(folder + "begin", 200) or b"")
        if isinstance(fields, str):
            return False
        intake = prepare.Intake(u, resume, fields, folder, running)
        if fs.stat_size(folder + "checked") < 0:
            intake.start_manifest()  # the manifest again (ota.upkeep checks a whole one)
        u.receiver = intake
        return True
    fields = begin_fields(payload)
    if isinstance(fields, str):
        from ota import outcome  # only for an answer: not held while the manifest comes

        outcome.refused(u, None, fields, retain=False)
        return False
    tag, manifest_bytes, release_bytes, chunk = fields
    release = str(hexlify(tag[:_ID_BYTES]), "ascii")
    p = u.pointer
    if release == p["active"]:
        # Sent again after its activation (the host restarted): say where it is.
        from ota import outcome  # only for an answer: not held while the manifest comes

        outcome.reply(u, release, "trial" if p["trial"] else "installed")
        return False
    r = u.receiver
    if r is not None and u.handoff is None and r.phase == _UNVERIFIED and r.release != release:
        # A begin whose manifest never arrived whole (anyone may send a
        # begin; only the key's holder a manifest that passes): it holds
        # no update back.
        u.log("ota: release %s dropped for %s: its manifest never came whole" % (r.release, release))
        r.discard()
        u.receiver = None
    why = None
    if u.key is None:
        why = "updates are off on this node: its secrets.py has no valid OTA_KEY"
    elif p["trial"]:
        why = "busy: release %s is on trial, not confirmed yet" % p["version"]
    elif u.resetting:
        why = "busy: resetting into release %s" % p["version"]
    elif u.receiver is not None or u.handoff is not None:
        current = u.handoff[0] if u.handoff is not None else u.receiver.release
        if current == release:
            u.progress_due = True  # the same release again: resumed where it is
            return True
        why = "busy: receiving release %s; send that one again to resume it, or abort it" % current
    elif not _CHUNK_MIN <= chunk <= u.max_chunk:
        why = "chunk size %d: this node takes %d to %d bytes" % (chunk, _CHUNK_MIN, u.max_chunk)
    elif not 0 < manifest_bytes <= MAX_MANIFEST_BYTES:
        why = "a manifest of %d bytes: at most %d" % (manifest_bytes, MAX_MANIFEST_BYTES)
    else:
        from ota.tidy import no_room

        why = no_room(u, release_bytes + manifest_bytes, 1)
    if why is not None:
        from ota import outcome  # only for an answer: not held while the manifest comes

        outcome.refused(u, release, why, retain=False)
        return False
    folder = u.folder + release
    if fs.exists(folder):  # a try of the same release rolled back before: start clean
        if folder in u.janitor:
            u.janitor.remove(folder)
        from ota.tidy import remove_some

        remove_some(folder, 4 * MAX_FILES + 16)
    if p["failed"] == release:
        from ota import pointer

        p["failed"] = None
        pointer.save(u.root, p)
        forget_module("ota.pointer")
    fs.mkdir(u.folder[:-1])
    fs.mkdir(folder)
    fs.write_atomic(folder + "/begin", bytes(payload))
    intake = prepare.Intake(u, release, fields, folder + "/", running)
    intake.start_manifest()
    u.receiver = intake
    u.log("ota: receiving release %s (%d bytes in chunks of %d)" % (release, release_bytes, chunk))
    return True


def begin_fields(payload):
    """(tag, manifest bytes, release bytes, chunk) of a begin message, or a
    string saying what is wrong with it."""
    try:
        fields = str(bytes(payload), "utf-8").split(" ")
    except UnicodeError:
        return "malformed begin: not text"
    if len(fields) != 5 or fields[0] != "ota1":
        return "malformed begin: not 'ota1 <hmac> <manifest bytes> <release bytes> <chunk>'"
    if len(fields[1]) != 64:
        return "malformed begin: the HMAC must be 64 hex digits"
    try:
        return unhexlify(fields[1]), int(fields[2]), int(fields[3]), int(fields[4])
    except ValueError:
        return "malformed begin: bad hex or number"
