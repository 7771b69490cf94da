# One SNTP query, run unchanged on CPython (PYTHONPATH=lib) and on the
# MicroPython Unix port (MICROPYPATH=lib):
#
#   ntp_query.py ADDRESS PORT TIMEOUT_MS
#
# Prints one line: "RESULT seconds=<unix seconds> took_ms=<ms>" or
# "ERROR class=<exception class> took_ms=<ms> message=<one line>".
import sys

from compat import ticks_diff, ticks_ms
from sntp import query


def main():
    address, port, timeout_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    started = ticks_ms()
    try:
        seconds = query(address, port, timeout_ms)
    except Exception as e:  # noqa: BLE001 - the test reads what was raised
        took = ticks_diff(ticks_ms(), started)
        print("ERROR class=%s took_ms=%d message=%s" % (e.__class__.__name__, took, " ".join(str(e).split())))
        return 1
    print("RESULT seconds=%d took_ms=%d" % (seconds, ticks_diff(ticks_ms(), started)))
    return 0


sys.exit(main())
