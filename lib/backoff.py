# Capped exponential backoff with jitter, for every "try again later" in
# the firmware (broker reconnect, Wi-Fi association). Jitter keeps a house
# full of nodes from reconnecting in step after the router comes back.

from random import getrandbits

from compat import const

# Every caller adds the wait to a tick (ticks_add), and a board's ticks_add
# refuses 2^29 ms (6.2 days) or more: a longer step is cut to this. Trying
# again sooner than asked is safe; an OverflowError in the reconnect path
# would not be.
_LONGEST_MS = const(0x1FFFFFFF)


class Backoff:
    def __init__(self, initial_ms=500, max_ms=60000):
        if not 0 < initial_ms <= max_ms:
            raise ValueError("backoff needs 0 < initial_ms <= max_ms, got %r and %r" % (initial_ms, max_ms))
        self.initial_ms = initial_ms if initial_ms < _LONGEST_MS else _LONGEST_MS
        self.max_ms = max_ms if max_ms < _LONGEST_MS else _LONGEST_MS
        self._current = self.initial_ms
        self.attempts = 0

    def reset(self):
        self._current = self.initial_ms
        self.attempts = 0

    def next_ms(self):
        """The wait before the next attempt: between half and all of the
        current step, which doubles each call up to max_ms (at most
        2^29 - 1 ms, the longest a board's ticks_add takes)."""
        step = self._current
        self._current = min(step * 2, self.max_ms)
        self.attempts += 1
        half = step >> 1
        return half + _random_below(step - half + 1)


def _random_below(n):
    # getrandbits exists on CPython and MicroPython; randrange is optional on boards.
    bits = 1
    while (1 << bits) < n:
        bits += 1
    while True:
        r = getrandbits(bits)
        if r < n:
            return r
