# A board on the MicroPython Unix port for the OTA tests: a flash directory
# laid out as make deploy leaves a board (/boot.py, /main.py, /board.py,
# /secrets.py, /lib/...), run as a board runs it: boot.py, then main.py
# from the working directory boot.py left. The process exiting is the
# board resetting; the test starts it again, as a power supply would.
#
#   OTA_FLASH=<dir> micropython tests/ota_board.py
#
# OTA_FAKES: firmware/unix_fakes (machine, network), after the flash's /lib;
# OTA_TESTS: tests/.
# OTA_KILL_AT=N: SIGKILL this process at its Nth step on flash (every open,
#   write, rename, removal and mkdir of lib/ota goes through ota.fs; they are
#   counted from the start of the process, boot.py's included).
# OTA_TRACE=1: print each of those steps, numbered ("OTA-FS n op path").
# OTA_HEAP=1: print the heap the node and the updater use ("OTA-HEAP ...").
#
import gc
import os
import sys
import time

flash = os.getenv("OTA_FLASH")
os.chdir(flash)
# As a board's ('', '.frozen', '/lib'), then the Unix fakes of machine and
# network, then tests/ (the kill points' counting, for the runs that use it).
sys.path[:] = ["", ".frozen", flash + "/lib", os.getenv("OTA_FAKES"), os.getenv("OTA_TESTS")]
kill_at = int(os.getenv("OTA_KILL_AT") or 0)
trace = os.getenv("OTA_TRACE") == "1"
heap = os.getenv("OTA_HEAP") == "1"
steps = [0]


def instrument(fs):
    # Only the kill and trace runs load the counting (tests/ota_kill_points.py):
    # the heap runs keep the heap for the node.
    if kill_at or trace:
        import ota_kill_points

        ota_kill_points.instrument(fs, kill_at, trace, steps, current)


current = {}  # the updater, once made: the kill points name its phase


def wire():
    """What the tests watch of the node's updater (node.py makes it where
    the secrets hold OTA_KEY): the kill points name its phase; the heap runs
    print what the node and the updater hold."""
    try:
        from node import node as node_module
        from ota import fs, updater
    except ImportError as e:
        print("ota_board: no OTA in this release (%r)" % (e,))
        return
    if kill_at or trace:
        # The counted ota.fs must stay the one every module uses: not
        # forgotten between updates as the updater forgets it otherwise.
        updater._ON_DEMAND = tuple(name for name in updater._ON_DEMAND if name != "ota.fs")
    instrument(fs)
    Node = node_module.Node
    made = Node.__init__
    step = Node.step

    def __init__(self, *args, **kwargs):
        made(self, *args, **kwargs)
        current["ota"] = self.ota
        # Where the node's modules came from: a release's own, not the deployed /lib boot.py used.
        print("OTA-MODULES compat from %s, node from %s" % (sys.modules["compat"].__file__, node_module.__file__))
        if heap:
            gc.collect()
            print("OTA-HEAP idle live=%d free=%d" % (gc.mem_alloc(), gc.mem_free()))

    def node_step(self):
        wait = step(self)
        if not peak["connected"] and self.client.connected and self.published:
            peak["connected"] = 1
            gc.collect()
            print("OTA-HEAP connected live=%d free=%d" % (gc.mem_alloc(), gc.mem_free()))
        if self.ota is not None:
            measure(self.ota)
        return wait

    Node.__init__ = __init__
    if heap:
        Node.step = node_step


peak = {"alloc": 0, "live": 0, "calls": 0, "shown": 0, "connected": 0}


def measure(ota):
    # While a release comes in: the most the heap held (garbage included)
    # and, every 8th step, what is live after a collection.
    if ota.receiver is None and not peak["alloc"]:
        return
    peak["calls"] += 1
    used = gc.mem_alloc()
    if used > peak["alloc"]:
        peak["alloc"] = used
    if peak["calls"] % 8 == 0:
        gc.collect()
        live = gc.mem_alloc()
        if live > peak["live"]:
            peak["live"] = live
    if peak["calls"] - peak["shown"] >= 64 or ota.receiver is None:
        peak["shown"] = peak["calls"]
        print("OTA-HEAP update peak=%d live_peak=%d free_now=%d" % (peak["alloc"], peak["live"], gc.mem_free()))


# boot.py, as the board runs it first. The fs steps of its own ota modules
# count too (the first boot of a release is a kill point).
try:
    from ota import fs as boot_fs

    instrument(boot_fs)
except ImportError:
    pass
board_globals = {"__name__": "__main__"}
with open("boot.py") as f:
    exec(f.read(), board_globals)
wire()
gc.collect()  # as boot.py ends, and main.py starts the node, on a board

def compiled(path):
    # A board compiles main.py from its file and keeps no text of it: the
    # source is garbage before the node starts, not held while it runs.
    with open(path) as f:
        return compile(f.read(), path, "exec")


try:
    main_code = compiled("main.py")
    gc.collect()
    exec(main_code, board_globals)
except SystemExit as e:
    if e.args and e.args[0] == 75:  # machine.reset()
        raise
    print("ota_board: main.py exited %r: at the REPL, as a board would be" % (e.args,))
    while True:
        time.sleep_ms(50)
except BaseException as e:  # noqa: BLE001 - what a board does: the traceback, then the REPL
    sys.print_exception(e)
    print("ota_board: main.py stopped: at the REPL, as a board would be")
    main_code = None
    gc.collect()
    while True:  # the REPL: scheduled callbacks (the OTA deadline) run here
        time.sleep_ms(50)
