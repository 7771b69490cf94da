# Resolves a host name with lib/dns.py, run unchanged on CPython
# (PYTHONPATH=lib) and on the MicroPython Unix port (MICROPYPATH=lib):
#
#   dns_resolve.py SERVER PORT HOST TIMEOUT_MS [repeat=1] [attempts=2] [pause_ms=0]
#
# Resolves `repeat` times with one Resolver (so its cache carries over),
# pausing pause_ms between, and prints one line per resolve, timed with
# ticks inside the script so that the interpreter's start-up does not count:
#
#   RESULT address=<IPv4> elapsed_ms=<ms> stale_answers=<n>
#   ERROR class=<exception class> elapsed_ms=<ms> stale_answers=<n> message=<str(e), one line>
#
# Exits 0 if every resolve gave an address, else 1.
import sys

from compat import sleep_ms, ticks_diff, ticks_ms
from dns import Resolver

OPTIONS = {"repeat": 1, "attempts": 2, "pause_ms": 0}


def say(*parts):
    print(*parts)
    flush = getattr(sys.stdout, "flush", None)
    if flush is not None:
        flush()


def main():
    if len(sys.argv) < 5:
        say("usage: dns_resolve.py SERVER PORT HOST TIMEOUT_MS [repeat=1] [attempts=2] [pause_ms=0]")
        return 2
    server, port, host, timeout_ms = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    options = dict(OPTIONS)
    for arg in sys.argv[5:]:
        name, value = arg.split("=")
        options[name] = int(value)
    resolver = Resolver(server, port, options["attempts"])
    failed = 0
    for i in range(options["repeat"]):
        if i and options["pause_ms"]:
            sleep_ms(options["pause_ms"])
        started = ticks_ms()
        try:
            address = resolver.resolve(host, timeout_ms)
        except Exception as e:  # noqa: BLE001 - the test reads what was raised
            elapsed = ticks_diff(ticks_ms(), started)
            message = " ".join(str(e).split())
            say(
                "ERROR class=%s elapsed_ms=%d stale_answers=%d message=%s"
                % (e.__class__.__name__, elapsed, resolver.stale_answers, message)
            )
            failed += 1
            continue
        elapsed = ticks_diff(ticks_ms(), started)
        say("RESULT address=%s elapsed_ms=%d stale_answers=%d" % (address, elapsed, resolver.stale_answers))
    return 1 if failed else 0


sys.exit(main())
