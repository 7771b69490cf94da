# The one place that knows which runtime it is on: CPython, the MicroPython
# Unix port, or MicroPython on a board (ticks, const, heap, environment).
# Everything else imports from here; the socket, select and ssl differences
# are in netcompat, so that the sans-I/O layers (codec, session, store) load
# on a runtime with no network stack. Feature detection only (try/except
# ImportError), never sys.implementation. CPython's stand-ins are in
# compat_cpython, so that a board does not hold their code.

try:
    from micropython import const
except ImportError:  # CPython
    from compat_cpython import const  # noqa: F401  # pyright: ignore[reportAssignmentType]

try:
    from time import sleep_ms, ticks_add, ticks_diff, ticks_ms
except ImportError:  # CPython: MicroPython's 30-bit wrapping millisecond ticks
    from compat_cpython import sleep_ms, ticks_add, ticks_diff, ticks_ms  # noqa: F401  # pyright: ignore[reportAssignmentType]

try:
    from gc import mem_alloc, mem_free
except ImportError:  # CPython has no fixed heap to report
    from compat_cpython import mem_alloc, mem_free  # noqa: F401  # pyright: ignore[reportAssignmentType]


def getenv(name):
    """An environment variable where the runtime has an environment (CPython,
    the Unix port); None on a board."""
    try:
        from os import getenv as _getenv
    except ImportError:
        return None
    return _getenv(name)
