# Wi-Fi association (node.wifi) against the Unix port's fake `network`, on
# synthetic ticks. Runs on CPython, the Unix port and the 32-bit runtime (a
# board's 2**30 ms tick period: its ticks_add refuses 2**29 ms or more).
import os
import sys

from compat import ticks_add, ticks_diff, ticks_ms
from node.wifi import Wifi

# ---- Wi-Fi, against the Unix port's fake network module -------------------


def fake_network():
    """firmware/unix_fakes/network.py (not on the harness's MICROPYPATH)."""
    roots = [""]
    parts = __file__.rsplit("/", 3)
    if len(parts) == 4:
        roots.insert(0, parts[0] + "/")
    for root in roots:
        path = root + "firmware/unix_fakes"
        try:
            os.stat(path + "/network.py")
        except OSError:
            continue
        sys.path.insert(0, path)
        try:
            import network
        finally:
            sys.path.remove(path)
        return network
    raise AssertionError("firmware/unix_fakes/network.py not found from %r" % __file__)


class FakeClock:
    """Stands in for the fake's `time`: association time follows the same
    synthetic ticks the test hands to Wifi.poll."""

    def __init__(self, now):
        self.now = now

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, end, start):
        return ticks_diff(end, start)


def with_fake_network(down, association_ms, fn):
    network = fake_network()
    saved = (network.time, network.down, network.association_ms)
    clock = FakeClock(ticks_ms())
    network.time = clock
    network.down = down
    network.association_ms = association_ms
    try:
        return fn(network, clock)
    finally:
        network.time, network.down, network.association_ms = saved


def make_wifi(network, clock, logs, timeout_ms=1000, start=None):
    """A Wifi on the fake network, its synthetic clock at start (default:
    now on the real clock)."""
    clock.now = ticks_ms() if start is None else start
    return Wifi("house", "secret", timeout_ms, network_module=network, log=logs.append)


def advance(clock, ms, step_ms, poll=None):
    """Moves the synthetic clock ms forward in steps of step_ms (a board's
    ticks_add takes less than 2**29 ms at once), calling poll(now) after each."""
    while ms > 0:
        step = step_ms if step_ms < ms else ms
        clock.now = ticks_add(clock.now, step)
        ms -= step
        if poll is not None:
            poll(clock.now)


def _associates_within_deadline(network, clock):
    logs = []
    wifi = make_wifi(network, clock, logs)
    t0 = clock.now
    assert wifi.poll(t0) is False  # starts associating, returns at once
    assert wifi.wlan.connect_calls == 1
    assert wifi.wlan.active() is True
    for dt in (1, 100, 199):
        clock.now = ticks_add(t0, dt)
        assert wifi.poll(clock.now) is False
    clock.now = ticks_add(t0, 200)
    assert wifi.poll(clock.now) is True
    assert wifi.is_up()
    assert wifi.reconnects == 1 and wifi.failures == 0
    assert wifi.wlan.connect_calls == 1
    assert logs == ["wifi: up on 'house'"], logs
    assert wifi.rssi() == -55
    clock.now = ticks_add(t0, 60000)
    assert wifi.poll(clock.now) is True  # stays up, no new association
    assert wifi.wlan.connect_calls == 1 and wifi.reconnects == 1


def test_wifi_associates_within_deadline():
    with_fake_network(False, 200, _associates_within_deadline)


def _fails_then_retries_with_backoff(network, clock):
    logs = []
    wifi = make_wifi(network, clock, logs, timeout_ms=1000)
    t0 = clock.now
    assert wifi.poll(t0) is False
    assert wifi.wlan.connect_calls == 1
    clock.now = ticks_add(t0, 999)
    assert wifi.poll(clock.now) is False
    assert wifi.failures == 0
    clock.now = ticks_add(t0, 1000)  # the deadline
    assert wifi.poll(clock.now) is False
    assert wifi.failures == 1
    assert "no association with 'house' within 1000 ms" in logs[-1], logs
    failed_at = clock.now
    # Backoff(1000, ...): the first wait is 500..1000 ms; nothing before it.
    for dt in (0, 1, 250, 499):
        clock.now = ticks_add(failed_at, dt)
        assert wifi.poll(clock.now) is False
        assert wifi.wlan.connect_calls == 1, dt
    retried_at = None
    for dt in range(500, 1001, 10):
        clock.now = ticks_add(failed_at, dt)
        wifi.poll(clock.now)
        if wifi.wlan.connect_calls == 2:
            retried_at = dt
            break
    assert retried_at is not None, "no second wlan.connect within 1000 ms of the failure"
    # The second failure waits longer: 1000..2000 ms.
    second_start = clock.now
    clock.now = ticks_add(second_start, 1000)
    wifi.poll(clock.now)
    assert wifi.failures == 2
    failed_at = clock.now
    clock.now = ticks_add(failed_at, 999)
    wifi.poll(clock.now)
    assert wifi.wlan.connect_calls == 2
    # The access point comes back: the next attempt associates and resets the backoff.
    network.down = False
    network.association_ms = 50
    for dt in range(1000, 2101, 10):
        clock.now = ticks_add(failed_at, dt)
        if wifi.poll(clock.now):
            break
    assert wifi.is_up(), "not up within 2100 ms after the access point came back"
    assert wifi.wlan.connect_calls == 3
    assert wifi.reconnects == 1 and wifi.failures == 2
    assert wifi.backoff.attempts == 0
    assert logs[-1] == "wifi: up on 'house'", logs


def test_wifi_failure_backs_off_and_calls_connect_again_later():
    with_fake_network(True, 50, _fails_then_retries_with_backoff)


def _never_blocks(network, clock):
    logs = []
    wifi = make_wifi(network, clock, logs, timeout_ms=2000)
    started = ticks_ms()
    t = clock.now
    for _ in range(3000):  # ten synthetic minutes in 200 ms steps
        t = ticks_add(t, 200)
        clock.now = t
        assert wifi.poll(t) is False
    elapsed = ticks_diff(ticks_ms(), started)
    assert elapsed < 2000, "3000 polls took %d ms of real time" % elapsed
    # Capped backoff: attempts keep coming, but not every poll.
    assert 5 <= wifi.wlan.connect_calls <= 200, wifi.wlan.connect_calls
    assert wifi.failures >= wifi.wlan.connect_calls - 1


def test_wifi_poll_never_blocks_while_association_fails():
    with_fake_network(True, 50, _never_blocks)


def _slow_association(network, clock):
    logs = []
    wifi = make_wifi(network, clock, logs, timeout_ms=1000)
    t0 = clock.now
    wifi.poll(t0)
    clock.now = ticks_add(t0, 1000)
    assert wifi.poll(clock.now) is False  # 5 s association, 1 s deadline: give up
    assert wifi.failures == 1
    clock.now = ticks_add(t0, 5000)
    assert not wifi.wlan.isconnected()  # the attempt was cancelled, not left running


def test_wifi_association_slower_than_deadline_is_abandoned():
    with_fake_network(False, 5000, _slow_association)


def _up(network, clock, wifi):
    network.down = False
    for _ in range(100):
        clock.now = ticks_add(clock.now, 10)
        if wifi.poll(clock.now):
            return True
    return False


def _reassociates_after(network, clock, up_for_ms, poll_every_ms):
    logs = []
    wifi = make_wifi(network, clock, logs)
    assert _up(network, clock, wifi)
    assert wifi.wlan.connect_calls == 1

    def stays_up(now):
        assert wifi.poll(now) is True
        assert wifi.wlan.connect_calls == 1

    # up_for_ms of service, the node's loop polling all along.
    advance(clock, up_for_ms, poll_every_ms, stays_up)
    # Then the access point drops us.
    network.down = True
    clock.now = ticks_add(clock.now, 10)
    assert wifi.poll(clock.now) is False
    assert wifi.wlan.connect_calls == 2, "no new association attempt after %d ms up" % up_for_ms
    assert _up(network, clock, wifi)
    assert wifi.reconnects == 2


def test_wifi_reassociates_at_once_when_the_link_drops():
    with_fake_network(False, 50, lambda network, clock: _reassociates_after(network, clock, 10000, 1000))


WEEK_MS = 7 * 24 * 3600 * 1000  # 604800000: over 2**29 ms, under 2**30 (a small int on a board)


def test_wifi_reassociates_at_once_after_a_week_up():
    # Boards (and compat on CPython) have 2**30 ms ticks: ticks_diff is only
    # meaningful within 2**29 ms (6.2 days). A retry time left over from
    # boot must not read as "in the future" a week later. The week passes
    # a minute per poll: 10080 polls, the ticks wrapping on the way.
    with_fake_network(False, 50, lambda network, clock: _reassociates_after(network, clock, WEEK_MS, 60000))


def _retries_after_a_week_unpolled(network, clock):
    logs = []
    wifi = make_wifi(network, clock, logs, timeout_ms=1000)
    wifi.poll(clock.now)
    clock.now = ticks_add(clock.now, 1000)
    wifi.poll(clock.now)
    assert wifi.failures == 1 and wifi.wlan.connect_calls == 1  # waiting 0.5..1 s to retry
    # No poll for a week (the loop stuck in something without a watchdog):
    # the retry is long overdue, not 5 days away as ticks_diff alone reads it.
    advance(clock, WEEK_MS, 1 << 28)
    assert wifi.poll(clock.now) is False
    assert wifi.wlan.connect_calls == 2
    # The same for the association deadline: over, not days away.
    advance(clock, WEEK_MS, 1 << 28)
    wifi.poll(clock.now)
    assert wifi.failures == 2
    assert "no association with 'house' within 1000 ms" in logs[-1], logs


def test_wifi_retries_at_once_after_a_week_without_a_poll():
    with_fake_network(True, 50, _retries_after_a_week_unpolled)


def test_wifi_refuses_a_deadline_ticks_cannot_measure():
    def make(timeout_ms):
        return lambda network, clock: make_wifi(network, clock, [], timeout_ms)

    for bad in (0, -1, 1 << 29, 1.5):
        try:
            with_fake_network(False, 50, make(bad))
        except ValueError as e:
            assert "connect_timeout_ms" in str(e) and repr(bad) in str(e), str(e)
            continue
        raise AssertionError("Wifi accepted connect_timeout_ms=%r" % (bad,))
    assert with_fake_network(False, 50, make((1 << 29) - 1)).connect_timeout_ms == (1 << 29) - 1


def _attempts(network, clock, wifi, span_ms, step_ms):
    """Polls every step_ms for span_ms; returns the offsets (ms from the
    first poll, measured across any wrap) of each wlan.connect call and of
    each attempt given up."""
    start = clock.now
    connects, failures = [], []
    calls, failed = wifi.wlan.connect_calls, wifi.failures
    for _ in range(span_ms // step_ms):
        wifi.poll(clock.now)
        if wifi.wlan.connect_calls != calls:
            calls = wifi.wlan.connect_calls
            connects.append(ticks_diff(clock.now, start))
        if wifi.failures != failed:
            failed = wifi.failures
            failures.append(ticks_diff(clock.now, start))
        clock.now = ticks_add(clock.now, step_ms)
    return connects, failures


def _check_attempts(connects, failures, timeout_ms, step_ms, context):
    # Each attempt is given up at its deadline (the polls land on it), and
    # the next starts after the backoff: Backoff(1000, 60000) waits half to
    # all of 1 s, 2 s, 4 s ... (no burst), and no later than a poll after (no stall).
    backoff_ms = 1000
    for k in range(len(failures)):
        assert failures[k] - connects[k] == timeout_ms, (context, connects, failures)
        if k + 1 < len(connects):
            waited = connects[k + 1] - failures[k]
            assert backoff_ms // 2 <= waited <= backoff_ms + step_ms, (context, k, connects, failures)
        backoff_ms = min(backoff_ms * 2, 60000)
    assert len(failures) in (len(connects), len(connects) - 1), (context, connects, failures)


def _across_the_wrap(network, clock):
    # 20 s of failing association from before_wrap_ms short of the wrap:
    # the wrap falls in the first deadline (500), the first backoff wait
    # (1500), the second attempt (2700) and the second wait (4000).
    # At 2**30 (a board, the 32-bit runtime, compat) and 2**62 (the Unix port).
    for before_wrap_ms in (500, 1500, 2700, 4000):
        network.down = True
        wifi = make_wifi(network, clock, [], timeout_ms=1000, start=ticks_add(0, -before_wrap_ms))
        connects, failures = _attempts(network, clock, wifi, 20000, 10)
        _check_attempts(connects, failures, 1000, 10, before_wrap_ms)
        # Attempts start by 1.5, 3.5, 6.5 and 11.5 s at the earliest, 2, 5, 10 and 19 s at the latest.
        assert len(connects) in (4, 5), (before_wrap_ms, connects)
        # The access point comes back: up within one backoff and one association.
        network.down = False
        up = False
        for _ in range(1700):
            clock.now = ticks_add(clock.now, 10)
            if wifi.poll(clock.now):
                up = True
                break
        assert up, (before_wrap_ms, connects, failures)
        assert wifi.reconnects == 1 and wifi.backoff.attempts == 0


def test_wifi_deadline_and_backoff_hold_across_the_tick_wrap():
    with_fake_network(True, 50, _across_the_wrap)
