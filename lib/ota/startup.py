# Run by boot.py at every reset, before main.py: chooses the release that
# boots, counts boots of a release on trial, rolls back, and arms the
# deadline by which a release on trial must have connected and published a
# reading. This module always comes from the /lib that make deploy wrote,
# never from a release, so an update cannot break the code that undoes it.
#
# A board runs main.py from its working directory after boot.py, and
# imports from sys.path ('' first, then '.frozen', '/lib'). For a release,
# the working directory becomes /ota-releases/<id> (its main.py and
# board.py) and /lib is replaced by /ota-releases/<id>/lib: nothing of the deployed /lib is on the
# path, so a module the release lacks fails to import instead of being
# taken, silently, from another version.
#
# What rolls a release back:
# - it does not confirm within `max_boots` boots (it crashes, the watchdog
#   resets it, it resets itself): the boot after the last one runs the
#   previous release;
# - it does not confirm within `deadline_s` of a boot (its main.py raised
#   and the board sits at the REPL; it never connects): a timer armed here
#   (ota.deadline), which no code of the release has to cooperate with,
#   rolls back and resets.

import os
import sys

from ota import fs, pointer


def choose(root):
    """(the tree to boot, the pointer) after this boot's rules are applied
    and written. The tree is root itself for the deployed files."""
    p = pointer.load(root)
    if p is None:
        return root, None
    changed = False
    stamp = pointer.deploy_stamp(root) if p["active"] else p["deploy"]
    if p["deploy"] != stamp:
        # make deploy ran since the pointer was written: what it copied wins.
        version = p["version"]
        p = pointer.fresh(root, stamp)
        p["outcome"] = "make deploy replaced release %s" % version
        changed = True
    if p["trial"]:
        p["boots"] += 1
        changed = True
        if p["boots"] > p["max_boots"]:
            why = "release %s did not confirm (connect and publish a reading) in %d boots" % (
                p["version"],
                p["max_boots"],
            )
            pointer.roll_back(root, p, why)
    if p["active"] and fs.stat_size(pointer.tree(root, p["active"]) + "main.py") < 0:
        version = p["version"]
        if p["trial"]:
            pointer.roll_back(root, p, "release %s is missing its main.py" % version)
        else:
            p = pointer.fresh(root, stamp)
            p["outcome"] = "release %s is missing its main.py: running the deployed files" % version
        changed = True
    if p["active"] and fs.stat_size(pointer.tree(root, p["active"]) + "main.py") < 0:
        p["active"] = ""  # the previous release went too: the deployed files are the way back
        p["version"] = pointer.deployed_version(root, p["deploy"])
        changed = True
    if changed:
        pointer.save(root, p)
    return pointer.tree(root, p["active"]), p


def start(root=None):
    """Chooses, then makes the chosen release the one main.py and its imports
    come from. Returns its tree, or None when the deployed files run."""
    if root is None:
        root = pointer.root_of(os.getcwd())
    tree, p = choose(root)
    if p is None:
        return None
    if p["outcome"] and p["outcome"].startswith("rolled back") and not p["trial"]:
        print("ota: %s" % p["outcome"])
    if tree == root:
        return None
    # secrets.py stays at the root, out of every release: import it while
    # the root is still the working directory ('' on sys.path), and main.py's
    # `import secrets` finds it in sys.modules.
    try:
        __import__("secrets")
    except ImportError:
        pass
    if p["trial"]:
        # Armed first: if no timer can be had, the deployed files run this
        # boot (it counted as one of the release's), never a release without
        # its deadline.
        from ota import deadline

        deadline.arm(root, p["active"], p["deadline_s"])
    os.chdir(tree[:-1])
    lib = root + "lib"
    if lib in sys.path:
        sys.path.remove(lib)
    # Right after '' (the release's main.py and board.py), before '.frozen':
    # a release's modules win over the ones a firmware has frozen in.
    sys.path.insert(1, tree + "lib")
    print("ota: running release %s (%s)%s" % (p["version"], p["active"], " on trial" if p["trial"] else ""))
    return tree
