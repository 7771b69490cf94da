# Helpers for tests that run unchanged on CPython (in pytest) and on the
# MicroPython Unix port (one `micropython` process per test, see run_one.py).
import gc
import os

from compat import mem_alloc

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
    port = os.getenv("TEST_BROKER_PORT")
    if not port:
        skip("no test broker: TEST_BROKER_PORT is not set")
    return "127.0.0.1", int(port)


def unique_id(prefix):
    # Client ids and topics must not collide between tests sharing one broker.
    tag = os.getenv("TEST_UNIQUE") or "x"
    return "%s-%s" % (prefix, tag)


def allocated_by(fn, *args):
    """Heap bytes allocated while fn(*args) runs, with the collector off.
    Only meaningful on MicroPython; CPython reports 0."""
    gc.collect()
    gc.disable()
    try:
        before = mem_alloc()
        fn(*args)
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
        return fn(*args)
    finally:
        heap_unlock()
