"""lib/sntp.py against a fake NTP server on 127.0.0.1, on CPython and the
Unix port: the server's time is taken, a hung server ends at the deadline,
and answers that carry no usable time are refused with the reason."""

import time

import pytest

from faults.ntp_server import NTPServer
from faults.support import RUNTIMES
from sntp import unix_seconds

# 2031-05-31T12:00:00Z: far from the host clock, so the time can only come from the server.
SERVER_TIME = 1937995200


def run_query(spawn, runtime, port, timeout_ms):
    script = spawn(runtime, "ntp_query.py", ["127.0.0.1", port, timeout_ms])
    _, _, line = script.wait_for("", 30, contains="took_ms=")
    script.finish(10)
    fields = dict(part.split("=", 1) for part in line.split(" ")[1:4] if "=" in part)
    return line, fields


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_query_returns_the_servers_time(runtime, spawn):
    with NTPServer(SERVER_TIME) as ntp:
        line, fields = run_query(spawn, runtime, ntp.port, 2000)
    assert line.startswith("RESULT"), line
    # Start-up of the process counts too: the server's clock has moved on a little.
    assert SERVER_TIME <= int(fields["seconds"]) <= SERVER_TIME + 15, line
    assert ntp.queries == 1


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_silent_server_ends_at_the_deadline(runtime, spawn):
    with NTPServer(SERVER_TIME) as ntp:
        ntp.mode = "silent"
        line, fields = run_query(spawn, runtime, ntp.port, 1500)
    print("%s: silent NTP server given up after %s ms (deadline 1500 ms)" % (runtime, fields.get("took_ms")))
    assert line.startswith("ERROR class=SNTPError"), line
    assert "no answer from NTP server 127.0.0.1:%d within 1500 ms" % ntp.port in line, line
    assert 1500 <= int(fields["took_ms"]) <= 4000, line


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(
    "mode, reason",
    [("kiss", "no time to give (stratum 0, leap 0)"), ("unsynchronized", "no time to give (stratum 2, leap 3)")],
)
def test_server_without_time_is_refused_with_the_reason(runtime, mode, reason, spawn):
    with NTPServer(SERVER_TIME) as ntp:
        ntp.mode = mode
        line, _ = run_query(spawn, runtime, ntp.port, 2000)
    assert line.startswith("ERROR class=SNTPError"), line
    assert reason in line, line


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_reply_not_echoing_the_request_is_ignored(runtime, spawn):
    """A datagram whose originate timestamp is not our request's random
    transmit timestamp (stray or spoofed) is dropped; the real answer counts."""
    with NTPServer(SERVER_TIME) as ntp:
        ntp.mode = "stray"
        line, fields = run_query(spawn, runtime, ntp.port, 2000)
    assert line.startswith("RESULT"), line
    assert SERVER_TIME <= int(fields["seconds"]) <= SERVER_TIME + 15, line


def test_era_rollover_in_2036():
    # RFC 4330 section 3: seconds with the top bit clear are in era 1 (after 2036-02-07).
    assert unix_seconds(0xFFFFFFFF) == 2085978495
    assert unix_seconds(0) == 2085978496
    assert unix_seconds(SERVER_TIME + 2208988800) == SERVER_TIME
    assert time.gmtime(unix_seconds(5))[:3] == (2036, 2, 7)
