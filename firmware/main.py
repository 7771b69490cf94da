# Runs the node on a board, forever. Copied to the board as /main.py with
# the board file as /board.py (tools/deploy.py); on the Unix port,
# tools/run_local.py sets BOARD=unix instead.
import gc
import sys

from backoff import Backoff
from compat import getenv, sleep_ms
from node.hardware import make_hardware
from node.node import Node

# Node failures in a row that were MemoryError before the board is reset: a
# heap that refuses the node twice is fragmented, or holds what restarts
# leave, and a restart in the same heap would fail the same way forever
# (the watchdog is fed through the pauses). A reset gives the heap back whole.
MEMORY_FAILURES_BEFORE_RESET = 2


def load_board():
    from node import config as board_config

    board = __import__(getenv("BOARD") or "board")
    try:
        import secrets  # boards/secrets.py: git-ignored, copied to the board  # pyright: ignore[reportMissingImports]
    except ImportError:
        secrets = None
    try:
        return board, board_config.load(board, secrets)
    finally:
        forget_module("node.config")


def forget_module(name):
    # Code only start-up runs (the board file checks: 7 KB of the 64-bit Unix
    # port's heap) need not hold RAM for as long as the node runs.
    sys.modules.pop(name, None)
    parts = name.split(".")
    package = sys.modules.get(".".join(parts[:-1]))
    if package is not None and hasattr(package, parts[-1]):
        delattr(package, parts[-1])


def pause(ms, feed, watchdog_ms):
    """sleep_ms(ms), feeding the watchdog (if one runs) at least every half
    of its timeout: the pause is deliberate, not a hang."""
    step = (watchdog_ms // 2 or 1) if feed is not None else ms
    while ms > 0:
        sleep_ms(step if step < ms else ms)
        ms -= step
        if feed is not None:
            feed()


def stop(feed, watchdog_ms):
    """Stop for the board file to be fixed. A watchdog once started cannot
    be stopped: it is fed here, or the board would reset into the same
    error for as long as it has power."""
    if feed is None:
        raise SystemExit(2)
    print("stopped until the board file is fixed (make deploy); the watchdog is fed meanwhile")
    while True:
        pause(watchdog_ms, feed, watchdog_ms)


def main():
    try:
        board, config = load_board()
    except ValueError as e:
        # A bad board file cannot fix itself: stop at the REPL with the reason.
        print("board file error:", e)
        raise SystemExit(2)
    import machine

    if config["SAFE_MODE_PIN"] is not None:
        from node import safe_mode  # only boards with the pin pay for its code

        if safe_mode.requested(config["SAFE_MODE_PIN"], machine):
            print("safe mode: %r held at start-up: node and watchdog not started; reset to run the node"
                  % (config["SAFE_MODE_PIN"],))
            return
    wdt = machine.WDT(timeout=config["WATCHDOG_MS"]) if config["WATCHDOG_MS"] else None
    feed = wdt.feed if wdt else None
    wifi = None
    if config["WIFI"]:
        from node.wifi import Wifi

        w = config["WIFI"]
        wifi = Wifi(w["ssid"], w["password"], w["connect_timeout_s"] * 1000)
    backoff = Backoff(1000, 30000)
    memory_failures = 0
    model = getattr(board, "MODEL", "house sensor node")
    while True:
        node = None
        try:
            # The node's buffers are large and made once: start them on a heap
            # without the garbage of loading the board (or of a failed node).
            gc.collect()
            try:
                node = Node(config, model, make_hardware(machine), wifi, reset=machine.reset)
            except ValueError as e:
                # A board setting the node cannot use (a driver's parameter
                # value): no retry fixes it, so stop as for a board file error.
                print("board file error:", e)
                stop(feed, config["WATCHDOG_MS"])
            if config["DEEP_SLEEP_S"]:
                from node.sleep import board_deepsleep

                node.cycle_and_sleep(board_deepsleep(machine, feed, config["WATCHDOG_MS"]), feed=feed)
            node.run(feed=feed)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - on a board the loop never exits
            print("node failed, restarting it:", repr(e))
            sys.print_exception(e)
            if node is not None:
                # Readings batched in RAM for the flash store go to flash
                # first: the next node replays them. The failure may have left
                # the store unable to write; the pause comes all the same.
                try:
                    node.flush_store()
                except Exception as flush_error:  # noqa: BLE001
                    print("store not flushed:", repr(flush_error))
                node = None
            memory_failures = memory_failures + 1 if isinstance(e, MemoryError) else 0
            if memory_failures >= MEMORY_FAILURES_BEFORE_RESET:
                print("out of memory %d times in a row: resetting the board" % memory_failures)
                machine.reset()
            # A node that fails at every start fails at the same pace: the
            # watchdog is fed through the pause, which is not a hang.
            pause(backoff.next_ms(), feed, config["WATCHDOG_MS"])


main()
