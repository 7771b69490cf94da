# The few filesystem steps an update takes, in one place: every write,
# rename and removal of the updater and of the boot-time release choice
# goes through here. That is what lets a test stop the process at any one
# of them (tests/ota_board.py counts them and SIGKILLs itself at the Nth),
# and it keeps the update's rules about flash in one module:
#
# - A file that must never be seen half-written (the pointer) is written
#   to <name>.tmp and renamed over the old one: on LittleFS (ESP32, RP2040)
#   and POSIX a rename replaces the target atomically.
# - Whole trees (listing, removing a few entries at a time) and the room
#   on flash are ota.tidy's: the receiving half of an update needs neither.

import os

from compat import const

_DIR = const(0x4000)  # stat's S_IFDIR bit, as MicroPython's os.stat reports it


def join(folder, name):
    return folder + name if folder.endswith("/") else folder + "/" + name


def stat_size(path):
    """The file's size, or -1 if there is none (or it is a directory)."""
    try:
        st = os.stat(path)
    except OSError:
        return -1
    return -1 if st[0] & _DIR else st[6]


def is_dir(path):
    try:
        return bool(os.stat(path)[0] & _DIR)
    except OSError:
        return False


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        if not is_dir(path):
            raise


def makedirs(path):
    """mkdir -p, for the folders of a release's file (lib/mqtt/...)."""
    parts = path.rstrip("/").split("/")
    at = "/" if path.startswith("/") else ""
    for i in range(len(parts)):
        if not parts[i]:
            continue
        at = at + parts[i] if (not at or at.endswith("/")) else at + "/" + parts[i]
        if not is_dir(at):
            mkdir(at)


def open_read(path):
    return open(path, "rb")


def open_write(path, mode="wb"):
    return open(path, mode)


def write(f, data):
    # One chunk into a staged file; a test counts these too.
    f.write(data)


def rename(old, new):
    os.rename(old, new)


def remove(path):
    os.remove(path)


def remove_if_there(path):
    try:
        remove(path)
    except OSError:
        pass


def rmdir(path):
    os.rmdir(path)


def write_atomic(path, data):
    """Replaces path with data in one rename: a reader (or the next boot,
    after a power cut) sees the old content or the new, never a mix."""
    tmp = path + ".tmp"
    f = open_write(tmp)
    try:
        write(f, data)
        if hasattr(f, "flush"):
            f.flush()
    finally:
        f.close()
    rename(tmp, path)


def read_small(path, limit):
    """The file's bytes if it exists and has at most limit of them, else None."""
    size = stat_size(path)
    if size < 0 or size > limit:
        return None
    try:
        f = open_read(path)
    except OSError:
        return None
    try:
        return f.read()
    finally:
        f.close()


def drop(u, path):
    """A refused release's folder: its begin file goes now (so that it is
    never taken up again after a reset), the rest through the updater's
    janitor, a few entries per poll: removing a whole release here could
    hold the node's loop for seconds of flash writes, past a watchdog."""
    try:
        if exists(path + "/begin"):
            remove(path + "/begin")
    finally:
        if path not in u.janitor:
            u.janitor.append(path)


def discard(stage):
    """A release coming in (ota.prepare's Intake, ota.receiver's Receiver)
    given up: its open files closed, its folder dropped."""
    for f in (stage._out, stage.reader.f if stage.reader is not None else None):
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
    if stage.copy is not None:
        stage.copy.close()
    stage._out = stage.reader = stage.copy = None
    try:
        drop(stage.u, stage.dir[:-1])
    except OSError as e:
        stage.u.log("ota: could not remove %s yet (%r): later" % (stage.dir, e))


class Copy:
    """Reads length bytes of a file (copying them to target, unless None)
    through buf, hashing them with SHA-256, a step of at most step bytes
    per call: flash work that never holds the node's loop for long."""

    def __init__(self, source, target, length, buf, then):
        import hashlib

        self.src = open_read(source)
        self.dst = open_write(target) if target is not None else None
        self.target = target
        self.left = length
        self.done = 0
        self.buf = buf
        self.then = then  # then(owner) when done
        self.sha = hashlib.sha256()

    def step(self, step):
        """True when all is read (and the files closed)."""
        buf = self.buf
        size = len(buf)
        view = memoryview(buf)
        while self.left > 0 and step > 0:
            want = self.left if self.left < size else size
            n = self.src.readinto(view[:want] if want < size else buf)
            if not n:
                raise OSError("a file ended early while it was read back")
            piece = view[:n] if n < size else buf
            self.sha.update(piece)
            if self.dst is not None:
                write(self.dst, piece)
            self.left -= n
            self.done += n
            step -= n
        if self.left > 0:
            return False
        self.close()
        return True

    def close(self):
        for f in (self.src, self.dst):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self.src = self.dst = None
