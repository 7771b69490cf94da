# The flash steps of lib/ota, counted, for tests/test_ota_kill.py: every
# open, write, rename, removal and mkdir of ota.fs, numbered from the start
# of the process (boot.py's included), printed with OTA_TRACE=1 and, at
# OTA_KILL_AT=N, the process SIGKILLs itself at the Nth: a power cut at
# exactly that step. Loaded by tests/ota_board.py only for those runs.
import os
import time


def phase(current):
    """What the updater was doing: boot (no updater yet), manifest,
    preparing, receiving, verifying, activating, idle."""
    ota = current.get("ota")
    if ota is None:
        return "boot"
    r = ota.receiver
    if r is not None:
        return r.progress()["state"]
    if ota.handoff is not None:
        return "preparing"
    if ota.resetting:
        return "activating"
    return "trial" if ota.on_trial else "idle"


def instrument(fs, kill_at, trace, steps, current):
    if getattr(fs, "_instrumented", False):
        return

    def step(op, path):
        steps[0] += 1
        n = steps[0]
        if trace:
            print("OTA-FS %d %s %s %s" % (n, phase(current), op, path))
        if n == kill_at:
            print("OTA-KILLPOINT %d %s %s %s" % (n, phase(current), op, path))
            os.system("kill -KILL $PPID")  # the shell's parent: this process
            time.sleep_ms(5000)

    def wrap(op, original, describe):
        def counted(*args):
            step(op, describe(args))
            return original(*args)

        return counted

    first = lambda args: args[0]  # noqa: E731
    fs.open_read = wrap("read", fs.open_read, first)
    fs.open_write = wrap("open", fs.open_write, first)
    fs.write = wrap("write", fs.write, lambda args: "%d bytes" % len(args[1]))
    fs.rename = wrap("rename", fs.rename, lambda args: "%s -> %s" % args)
    fs.remove = wrap("remove", fs.remove, first)
    fs.rmdir = wrap("rmdir", fs.rmdir, first)
    fs.mkdir = wrap("mkdir", fs.mkdir, first)
    fs._instrumented = True
