# What a manifest must be before the first file chunk: the node, the board
# and its architecture, every path inside the release's tree and never the
# secrets, the numbers in range, the whole of it there, and room on flash.
# A step of its own between ota.prepare's two (the manifest; the copy
# pass), taken from flash with neither of them in RAM.

from compat import const
from ota import fs
from ota.errors import ManifestError
from ota.manifest import BOOTS, DEADLINE_S, HEADER, MAX_FILE_BYTES, MAX_FILES, MAX_TEXT, Reader

_MAX_PATH = const(96)
_PATH_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
_HEX = "0123456789abcdef"


def path_error(path):
    """Why a release may not carry a file at path, or None if it may.
    A release holds what make deploy writes at the root (main.py, board.py,
    firmware_version.py) and lib/**.mpy|.py: nothing that reaches out of
    its tree, and never the secrets or boot.py."""
    if not path:
        return "an empty path"
    if len(path) > _MAX_PATH:
        return "path %r is longer than %d characters" % (path, _MAX_PATH)
    if path[0] == "/":
        return "path %r is absolute: it reaches outside the release tree" % path
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            return "path %r reaches outside the release tree" % path
        for c in part:
            if c not in _PATH_CHARS:
                return "path %r has %r: only letters, digits, '_', '.' and '-' are allowed" % (path, c)
    name = parts[-1]
    if [part for part in parts if part.split(".")[0] == "secrets"]:  # lib/secrets/__init__.py shadows it too
        return "path %r would overwrite or shadow secrets.py: secrets never travel in a release" % path
    if path == "boot.py":
        return "path 'boot.py' would replace the code that chooses and rolls back releases: only make deploy writes it"
    if len(parts) == 1:
        if not name.endswith(".py"):
            return "path %r: a release's top level holds only .py files (main.py, board.py, ...)" % path
        return None
    if parts[0] != "lib":
        return "path %r: a release's modules live under lib/" % path
    if not (name.endswith(".mpy") or name.endswith(".py")):
        return "path %r: lib/ holds only .mpy and .py files" % path
    return None


def _number(key, text, low, high):
    try:
        value = int(text)
    except ValueError:
        raise ManifestError("manifest %s must be a whole number, got %r" % (key, text))
    if not low <= value <= high:
        raise ManifestError("manifest %s must be %d to %d, got %d" % (key, low, high, value))
    return value


def checked_header(fields):
    """The header's fields, each checked; the numbers as numbers."""
    for key in fields:
        if key not in HEADER:
            raise ManifestError("manifest has an unknown field %r" % key)
        # In bytes: the pointer file keeps the version (up to three times) within its size.
        if not fields[key] or len(fields[key].encode()) > MAX_TEXT:
            raise ManifestError("manifest %s must be 1 to %d bytes" % (key, MAX_TEXT))
    for key in HEADER:
        if key not in fields:
            raise ManifestError("manifest has no %r" % key)
    for c in fields["version"]:
        if not " " < c <= "~":  # a version is a name (git describe): printable ASCII, no spaces
            raise ManifestError("manifest version must be printable ASCII without spaces, got %r" % fields["version"])
    fields["deadline_s"] = _number("deadline_s", fields["deadline_s"], DEADLINE_S[0], DEADLINE_S[1])
    fields["boots"] = _number("boots", fields["boots"], BOOTS[0], BOOTS[1])
    return fields


def checked_files(reader):
    """Reads every file line, each checked; (files, has main.py and board.py)."""
    previous = None
    bootable = 0
    while reader.next():
        path = reader.path
        if reader.index >= MAX_FILES:
            raise ManifestError("manifest lists more than %d files" % MAX_FILES)
        sha = reader.sha
        if len(sha) != 64 or any(c not in _HEX for c in str(sha, "ascii")):
            raise ManifestError("manifest SHA-256 of %r is not 64 lowercase hex digits" % path)
        if not 0 <= reader.size <= MAX_FILE_BYTES:
            raise ManifestError("manifest size of %s must be 0 to %d, got %d" % (path, MAX_FILE_BYTES, reader.size))
        why = path_error(path)
        if why is not None:
            raise ManifestError(why)
        if previous is not None and not path > previous:
            raise ManifestError("manifest paths must be sorted and unique: %r after %r" % (path, previous))
        previous = path
        bootable |= 1 if path == "main.py" else 2 if path == "board.py" else 0
    return reader.index + 1, bootable == 3


def run(u, release):
    """Checks release, whose manifest is in (release.txt), from what is on
    flash; then hands it to ota.prepare's copy pass, or refuses it."""
    folder = u.folder + release + "/"
    try:
        release_bytes = int((fs.read_small(folder + "begin", 200) or b"").split(b" ")[3])
        check(u, folder, release_bytes)
        fs.write_atomic(folder + "checked", b"")
    except (ManifestError, OSError, ValueError, IndexError) as e:
        reason = str(e) if isinstance(e, ManifestError) else "flash error: %r" % (e,)
        try:
            fs.drop(u, folder[:-1])
        except OSError:
            pass  # the janitor has it
        from ota import outcome

        outcome.refused(u, release, reason)
        return
    u.handoff = (release, "prepare")
    u.progress_due = True


def check(u, folder, release_bytes):
    """All a release must be, before its first file chunk: for this node,
    whole, inside its tree, bootable, with room on flash."""
    f = fs.open_read(folder + "release.txt")
    try:
        reader = Reader(f)
        h = checked_header(reader.header())
        files, bootable = checked_files(reader)
    finally:
        f.close()
    if h["node"] != u.node:
        raise ManifestError("release for node %s (board %s), this is %s" % (h["node"], h["board"], u.node))
    if u.arch and h["arch"] != u.arch:
        why = "release for board %s compiled for %s: this board runs %s" % (h["board"], h["arch"], u.arch)
        raise ManifestError(why)
    running = running_board(u)
    if running and h["board"] != running:
        raise ManifestError("release for board %s: this node runs board %s" % (h["board"], running))
    if not bootable:
        raise ManifestError("release has no main.py or no board.py: it would not boot")
    if reader.total != release_bytes:
        raise ManifestError("begin announced %d bytes, the manifest lists %d" % (release_bytes, reader.total))
    from ota.tidy import no_room

    why = no_room(u, reader.total, files)
    if why:
        raise ManifestError(why)


def running_board(u):
    active = u.pointer["active"]
    f = None
    try:
        f = fs.open_read((u.folder + active + "/" if active else u.root) + "release.txt")
        return Reader(f).header()["board"]
    except (OSError, ValueError, KeyError):
        return None  # the deployed files: their board is not written down
    finally:
        if f is not None:
            f.close()
