# Which channel a stored reading belongs to, when the board's sensor list
# changed while readings waited on flash. A record keeps its channel's
# index in the node's list; a reordered, shortened or lengthened list
# would send a waiting reading under another sensor's topic. So the store
# keeps, beside its segment files, the names of the list it writes under,
# and the lists earlier records were written under, each with the last seq
# written under it:
#
#   <path>/channels   {"names": [...], "eras": [[last seq, [names...]], ...]}
#
# Loaded by FlashStore when it opens (node.build lets it go after).
import json
import os

GONE = 255  # a reading of a sensor no longer on the board
_EEXIST = 17


def _read(path):
    try:
        with open(path) as f:
            saved = json.loads(f.read())
        return saved["names"], saved["eras"]
    except (OSError, ValueError, KeyError, TypeError):
        # None yet (a new store, or one from firmware before this file), or
        # unreadable: the list is taken as unchanged, as before this file.
        return None, []


def _write(path, names, eras):
    # A new file renamed over the old one: a reset in between leaves the
    # old one whole (LittleFS renames atomically), and nothing has been
    # written under the new list before this returns.
    new = path + ".new"
    with open(new, "w") as f:
        f.write(json.dumps({"names": names, "eras": eras}))
    try:
        os.rename(new, path)
    except OSError as e:
        if e.errno != _EEXIST:
            raise
        os.remove(path)  # FAT renames over no file: a reset here loses the lists
        os.rename(new, path)


def eras(folder, names, newest, lowest):
    """([last seq], [map]) of the earlier lists still in use, oldest first:
    a record whose seq is at most last seq[i] was written under list i, and
    map[i][its index] is its index in names now (GONE if none). newest: the
    newest seq on flash; lowest: the oldest that may still be held (those
    below are acknowledged: a list only they used is forgotten)."""
    path = folder + "/channels"
    saved, old = _read(path)
    # An era's end was the newest seq when it began, and the newest seq
    # only grows, but for a store reformatted (its geometry changed), which
    # starts again from 1 and holds nothing of the lists before.
    kept = [era for era in old if lowest <= era[0] <= newest]
    if saved is not None and saved != names and newest >= lowest:
        if not kept or kept[-1][0] < newest:
            kept.append([newest, saved])
    if saved != names or len(kept) != len(old):
        _write(path, names, kept)
    ends = []
    maps = []
    for last, listed in kept:
        mapping = bytearray(len(listed))
        for i, name in enumerate(listed):
            mapping[i] = names.index(name) if name in names else GONE
        ends.append(last)
        maps.append(mapping)
    return ends, maps
