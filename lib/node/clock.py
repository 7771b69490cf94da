# Setting the clock from NTP (JSON payloads carry the time): node.node loads
# this module for each sync, every 6 h or after a failure, and forgets it
# after.

from compat import ticks_add
from node import node as host
from node import timestamp  # its sync_ntp, which tests may replace

_NTP_RESYNC_MS = 6 * 3600 * 1000  # a board's clock drifts seconds a day


def sync(node, now):
    host_name, port = node.ntp
    resolve = node.resolver.resolve if node.resolver is not None else _by_name
    if timestamp.sync_ntp(host_name, port, resolve, host._step_deadline_ms(node.config["WATCHDOG_MS"]), node.log):
        if node.ntp_backoff is not None:
            node.ntp_backoff.reset()
        node.next_ntp = ticks_add(now, _NTP_RESYNC_MS)
    else:
        if node.ntp_backoff is None:
            # Made at the first failure: a board whose NTP server answers
            # never loads it for this (node.wifi loads it on a Wi-Fi board).
            from backoff import Backoff

            node.ntp_backoff = Backoff(10000, 600000)
        node.next_ntp = ticks_add(now, node.ntp_backoff.next_ms())


def _by_name(host_name, timeout_ms):
    # Without a resolver the name goes to getaddrinfo, deadline or not.
    return host_name
