# Helpers for tests that run unchanged on CPython (in pytest), on the
# MicroPython Unix port (one `micropython` process per test, see run_one.py)
# and on the 32-bit MicroPython (one process per module, run_module.py),
# which has no os.getenv, no sockets and an in-memory filesystem.
import gc

from compat import getenv, mem_alloc

try:
    import pytest as _pytest
except ImportError:
    _pytest = None


class SkipTest(Exception):
    pass


def skip(reason):
    if _pytest is not None:
        _pytest.skip(reason)
    raise SkipTest(reason)


def on_micropython():
    # Tests may branch on this (for allocation checks); lib/ never does.
    return _pytest is None


def broker_address():
    """(host, port) of the broker the harness started for this run."""
    port = getenv("TEST_BROKER_PORT")
    if not port:
        skip("no test broker: TEST_BROKER_PORT is not set")
    return "127.0.0.1", int(port)


def refusing_broker_address():
    """(host, port) of a listener on the test broker that refuses every client."""
    port = getenv("TEST_BROKER_AUTH_PORT")
    if not port:
        skip("no refusing listener: TEST_BROKER_AUTH_PORT is not set")
    return "127.0.0.1", int(port)


def poll_until(clients, condition, timeout_ms=5000):
    """Polls the client (or list of clients) until condition() is true.
    Returns False if timeout_ms passed first."""
    from compat import ticks_add, ticks_diff, ticks_ms

    if not isinstance(clients, list):
        clients = [clients]
    deadline = ticks_add(ticks_ms(), timeout_ms)
    while not condition():
        left = ticks_diff(deadline, ticks_ms())
        if left <= 0:
            return False
        for client in clients:
            client.poll(10)
    return True


def fresh_dir(name):
    """An empty folder's path under $TMPDIR or /tmp (the 32-bit runtime's
    in-memory /tmp: no environment there), for one test."""
    import os

    path = "%s/%s" % (getenv("TMPDIR") or "/tmp", unique_id(name))
    try:
        for entry in os.listdir(path):
            os.remove(path + "/" + entry)
    except OSError:
        pass
    return path


def remove_dir(path):
    """Removes a folder fresh_dir gave, with the files a test left in it."""
    import os

    for entry in os.listdir(path):
        os.remove(path + "/" + entry)
    os.rmdir(path)


def unique_id(prefix):
    # Client ids and topics must not collide between tests sharing one broker.
    tag = getenv("TEST_UNIQUE") or "x"
    return "%s-%s" % (prefix, tag)


def raised_by(fn, *args):
    """The exception fn(*args) raises (MicroPython has no pytest.raises);
    AssertionError if it returns."""
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - the caller checks which
        return e
    raise AssertionError("%s raised nothing" % (fn,))


def allocated_by(fn, *args):
    """Heap bytes allocated while fn(*args) runs, with the collector off.
    Only meaningful on MicroPython; CPython reports 0."""
    gc.collect()
    gc.disable()
    try:
        before = mem_alloc()
        _call(fn, args)
        return mem_alloc() - before
    finally:
        gc.enable()


def heap_locked(fn, *args):
    """Runs fn(*args) with the MicroPython heap locked: any allocation raises
    MemoryError. The strongest proof that a path allocates nothing."""
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:
        return fn(*args)
    heap_lock()
    try:
        return _call(fn, args)
    finally:
        heap_unlock()


def _call(fn, args):
    # fn(*args) would allocate (and free) an argument array on MicroPython,
    # which a locked heap refuses: spell the calls out.
    n = len(args)
    if n == 0:
        return fn()
    if n == 1:
        return fn(args[0])
    if n == 2:
        return fn(args[0], args[1])
    if n == 3:
        return fn(args[0], args[1], args[2])
    if n == 4:
        return fn(args[0], args[1], args[2], args[3])
    raise ValueError("at most 4 arguments, got %d" % n)


def ticks_before_wrap(before_wrap_ms):
    """A ticks_ms that reads before_wrap_ms short of the point where ticks
    wrap and then runs on with the real clock: 2**30 ms on a board and on
    the 32-bit runtime, 2**62 on the Unix port. Allocates nothing per call."""
    from compat import ticks_add, ticks_diff, ticks_ms

    offset = ticks_diff(ticks_add(0, -before_wrap_ms), ticks_ms())
    if offset == -(1 << 29):  # the one distance ticks_add refuses on a board
        offset += 1

    def wrapped_ticks_ms():
        return ticks_add(ticks_ms(), offset)

    return wrapped_ticks_ms


def run_near_wrap(modules, before_wrap_ms, fn):
    """fn() with ticks_ms in each module (which took it with `from compat
    import ticks_ms`) read from ticks_before_wrap(before_wrap_ms)."""
    return with_ticks(modules, ticks_before_wrap(before_wrap_ms), fn)


def with_ticks(modules, clock, fn):
    """fn() with ticks_ms in each module replaced by clock()."""
    saved = [module.ticks_ms for module in modules]
    for module in modules:
        module.ticks_ms = clock
    try:
        return fn()
    finally:
        for i in range(len(modules)):  # MicroPython's zip has no strict=
            modules[i].ticks_ms = saved[i]
