# Reconnect pacing: doubling steps, capped, each wait jittered within its step.
from backoff import Backoff


def test_waits_double_up_to_the_cap_with_jitter_inside_each_step():
    b = Backoff(500, 4000)
    for step in (500, 1000, 2000, 4000, 4000, 4000):
        wait = b.next_ms()
        assert step // 2 <= wait <= step, (step, wait)
    assert b.attempts == 6


def test_reset_starts_over():
    b = Backoff(100, 1000)
    for _ in range(5):
        b.next_ms()
    b.reset()
    assert b.next_ms() <= 100
    assert b.attempts == 1


def test_jitter_spreads_a_fleet():
    # Ten nodes reconnecting after the same outage do not all pick one instant.
    waits = set(Backoff(1000, 60000).next_ms() for _ in range(10))
    assert len(waits) > 3


def test_bad_bounds_are_value_errors():
    for initial, maximum in ((0, 10), (20, 10), (-1, 5)):
        try:
            Backoff(initial, maximum)
        except ValueError as e:
            assert str(initial) in str(e)
            continue
        raise AssertionError("accepted %r" % ((initial, maximum),))
