# Runs first on every reset. Kept minimal: anything that fails here would
# stop the board before main.py's supervisor loop could recover.
#
# Over-the-air updates: lib/ota/startup.py (from the /lib that make deploy
# wrote, never from an update) picks the release that boots, counts the
# boots of one on trial and rolls it back when it does not confirm. When it
# fails, the deployed files run: they are always the way back.
import gc
import sys


def _start_release():
    try:
        from ota import startup
    except ImportError:  # a board deployed without lib/ota
        startup = None
    if startup is not None:
        try:
            startup.start()
        except Exception as e:  # noqa: BLE001 - the deployed files must still run
            print("ota: boot: %r: running the deployed files" % (e,))
    # The release imports its own ota package and compat (the deployed ones
    # were loaded for this); a release on trial keeps the deadline timer's
    # module alive as sys.modules["_ota_boot"].
    for name in ("ota", "ota.startup", "ota.pointer", "ota.fs", "ota.deadline", "compat"):
        sys.modules.pop(name, None)


_start_release()
del _start_release
gc.collect()
