# Which release runs: one small JSON file, /ota-releases/pointer, replaced whole by a
# rename (ota.fs.write_atomic) so that a reset at any instant leaves the old
# pointer or the new one. Activating a release, counting a boot on trial,
# confirming and rolling back are each one such write.
#
#   {"format": 1,
#    "active": "3fa2b1c09d7e4411",   the release that boots ("" = the files
#                                   make deploy wrote: /main.py, /lib)
#    "version": "594e9f6",
#    "previous": "",                kept on flash until "active" is confirmed;
#    "previous_version": "deploy-1c2d3e4f",   null when there is none
#    "trial": true,                 not confirmed yet
#    "boots": 1, "max_boots": 3,    boots counted on trial, and the limit
#    "deadline_s": 300,             per boot on trial, to connect and publish
#    "failed": null,                the release last rolled back (its files go)
#    "outcome": null,               "confirmed", "rolled back: <why>", ...
#    "deploy": "8d1e..."}           the deploy manifest's hash when written
#
# A release lives in /ota-releases/<id>/ as main.py, board.py and lib/, the same
# tree make deploy writes at /. A `make deploy` after an update rewrites
# /deploy_manifest.json; boot.py sees its hash change and runs what was
# deployed (ota.startup).

import hashlib
import json
from binascii import hexlify

from compat import const
from ota import fs

FORMAT = const(1)
ID_LENGTH = const(16)
# Not a name `import` could take: "" (the working directory, / at boot) is
# first on sys.path, and a folder /ota would be found before /lib/ota.
FOLDER = "ota-releases/"
NAME = "ota-releases/pointer"
DEPLOY_MANIFEST = "deploy_manifest.json"
VERSION_FILE = "firmware_version.py"
_MAX_POINTER = const(2048)
_MAX_DEPLOY_MANIFEST = const(65536)


def root_of(cwd):
    """The flash root for a working directory: boot.py makes /ota-releases/<id> the
    working directory of a release, so the root is what is above it."""
    root = cwd if cwd.endswith("/") else cwd + "/"
    at = root.rfind("/" + FOLDER)
    if at >= 0 and is_release_id(root[at + 1 + len(FOLDER) : -1]):
        return root[: at + 1]
    return root


def is_release_id(text):
    """A release's name: the first 16 hex digits of its manifest's HMAC."""
    if len(text) != ID_LENGTH:
        return False
    for c in text:
        if c not in "0123456789abcdef":
            return False
    return True


def tree(root, release):
    """The folder a release's main.py, board.py and lib/ are in."""
    return root if not release else root + FOLDER + release + "/"


def deploy_stamp(root):
    """The first 16 hex digits of the deploy manifest's SHA-256, "" if there
    is none. Read in small pieces: it grows with lib/."""
    try:
        f = fs.open_read(root + DEPLOY_MANIFEST)
    except OSError:
        return ""
    sha = hashlib.sha256()
    buf = bytearray(256)
    try:
        for _ in range(_MAX_DEPLOY_MANIFEST // 256):
            n = f.readinto(buf)
            if not n:
                break
            sha.update(memoryview(buf)[:n])
    finally:
        f.close()
    return str(hexlify(sha.digest())[:16], "ascii")


def deployed_version(root, stamp):
    """The version of what make deploy wrote: VERSION in its
    /firmware_version.py (git describe at deploy time), else "deploy-" and
    the deploy manifest's hash; "dev" without either (run from the source
    tree, as node.announce calls it too)."""
    text = fs.read_small(root + VERSION_FILE, 512)
    if text is not None:
        at = text.find(b"VERSION = ")
        if at >= 0:
            line = text[at + 10 :].split(b"\n")[0].strip()  # 'x'  # a comment
            end = line.find(line[:1], 1)
            if line[:1] in (b"'", b'"') and end > 1:
                return str(line[1:end], "utf-8")
    return "deploy-" + stamp[:8] if stamp else "dev"


def fresh(root, stamp):
    """The pointer of a board that runs what make deploy wrote."""
    p = {"format": FORMAT, "active": ""}
    for key in _DEFAULTS:
        p[key] = _DEFAULTS[key]
    p["version"] = deployed_version(root, stamp)
    p["deploy"] = stamp
    return p


def load(root):
    """The pointer, or None if there is none or it cannot be read (then the
    deployed files run)."""
    data = fs.read_small(root + NAME, _MAX_POINTER)
    if data is None:
        return None
    try:
        p = json.loads(data)
    except ValueError:
        return None
    if not isinstance(p, dict) or p.get("format") != FORMAT or not isinstance(p.get("active"), str):
        return None
    for key in _DEFAULTS:
        if key not in p:
            p[key] = _DEFAULTS[key]
    return p


_DEFAULTS = {
    "version": "?",
    "previous": None,
    "previous_version": None,
    "trial": False,
    "boots": 0,
    "max_boots": 3,
    "deadline_s": 300,
    "failed": None,
    "outcome": None,
    "deploy": "",
}


def save(root, p):
    fs.mkdir(root + FOLDER[:-1])
    fs.write_atomic(root + NAME, json.dumps(p).encode())


def roll_back(root, p, reason):
    """p with the release on trial given up for the previous one."""
    p["failed"] = p["active"]
    p["active"] = p["previous"] if p["previous"] is not None else ""
    if p["previous_version"] is not None:
        p["version"] = p["previous_version"]
    else:
        p["version"] = deployed_version(root, p["deploy"])
    p["previous"] = None
    p["previous_version"] = None
    p["trial"] = False
    p["boots"] = 0
    p["outcome"] = "rolled back: " + reason
    return p
