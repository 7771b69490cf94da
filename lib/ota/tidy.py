# Whole folders of releases and the room they take: listing, removing a
# tree a few entries at a time, and whether a release fits the free flash.
# Every removal still goes through ota.fs (the tests count them there).
# Every walk has a fixed depth and a budget of entries per call, so removing
# a release is a bounded step of the node's loop.

import os

from compat import const
from ota import fs

_MAX_DEPTH = const(8)  # deeper than any release tree (lib/<package>/<module>)


def listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def free_bytes(path):
    """(bytes free for a new file, block size) of the filesystem at path."""
    st = os.statvfs(path)
    block = st[1] or st[0]  # f_frsize, or f_bsize where a port leaves it 0
    return st[4] * block, block


def remove_some(path, budget):
    """Removes up to `budget` files or empty folders of the tree at path,
    deepest first; returns True once path is gone. Bounded: a call lists at
    most _MAX_DEPTH folders and removes at most `budget` entries."""
    for _ in range(budget):
        if not fs.exists(path):
            return True
        if not fs.is_dir(path):
            fs.remove(path)
            continue
        folder = path
        for _depth in range(_MAX_DEPTH):
            names = listdir(folder)
            if not names:
                break
            child = fs.join(folder, names[0])
            if fs.is_dir(child):
                folder = child
                continue
            fs.remove(child)
            folder = None
            break
        else:
            raise OSError("folder deeper than %d levels under %s" % (_MAX_DEPTH, path))
        if folder is not None:
            fs.rmdir(folder)
    return not fs.exists(path)


def no_room(u, total, files):
    """Why a release of total bytes in files files does not fit, or None."""
    try:
        free, block = (u.free_bytes or free_bytes)(u.root)
    except (OSError, AttributeError):
        return None  # a filesystem that does not say: the writes will
    # Each file ends in a part-used block, and folders and the manifest take
    # some: counted whole. What is received is a second copy: the running
    # release stays until the new one is confirmed.
    need = total + (files + 8) * block
    if need > free:
        return "release needs %d KB of flash, %d KB are free" % ((need + 1023) // 1024, free // 1024)
    return None
