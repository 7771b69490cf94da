# One SNTP query (RFC 4330) over UDP with a deadline: the time a board's
# JSON payloads carry. ntptime, where a board has it, waits on DNS with no
# deadline; this takes an address (the caller resolves it with a deadline).

import select
import socket
import struct

from compat import ticks_add, ticks_diff, ticks_ms
from netcompat import POLLIN

_PACKET_SIZE = 48
_CLIENT_V4 = 0x23  # LI 0, version 4, mode 3 (client)
_MODE_SERVER = 4
_LI_UNSYNCHRONIZED = 3
_ORIGINATE = 24  # RFC 4330 section 4: offsets of the 64-bit timestamps
_TRANSMIT = 40
# NTP counts seconds from 1900; era 0 ends in 2036, after which the seconds
# start again from 0 (RFC 4330 section 3: MSB clear means era 1).
_NTP_TO_UNIX = 2208988800
_ERA = 1 << 32


class SNTPError(OSError):
    """No usable time: no answer within the deadline, or the server said it has none."""


def unix_seconds(ntp_seconds):
    if ntp_seconds < 0x80000000:
        ntp_seconds += _ERA
    return ntp_seconds - _NTP_TO_UNIX


def query(address, port=123, timeout_ms=2000):
    """The server's time, in Unix seconds, at the moment its answer arrived
    (its transmit time plus half the round trip). address: a literal IP."""
    request = bytearray(_PACKET_SIZE)
    request[0] = _CLIENT_V4
    # Random transmit timestamp: the answer must echo it as its originate
    # timestamp, so a stray or spoofed datagram is not taken (section 5).
    request[_TRANSMIT : _TRANSMIT + 8] = _random8()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        poller = select.poll()
        poller.register(sock, POLLIN)
        sent = ticks_ms()
        deadline = ticks_add(sent, timeout_ms)
        sock.sendto(request, socket.getaddrinfo(address, port)[0][-1])
        while True:
            left = ticks_diff(deadline, ticks_ms())
            if left <= 0:
                raise SNTPError("no answer from NTP server %s:%d within %d ms" % (address, port, timeout_ms))
            if not poller.poll(left):
                continue
            reply = sock.recv(_PACKET_SIZE + 16)
            if len(reply) == _PACKET_SIZE and reply[_ORIGINATE : _ORIGINATE + 8] == request[_TRANSMIT : _TRANSMIT + 8]:
                break
    finally:
        sock.close()
    return _server_time(reply, ticks_diff(ticks_ms(), sent), address)


def _server_time(reply, round_trip_ms, address):
    mode = reply[0] & 7
    leap = reply[0] >> 6
    stratum = reply[1]
    if mode != _MODE_SERVER:
        raise SNTPError("NTP server %s: answer has mode %d, not a server's" % (address, mode))
    if stratum == 0 or stratum > 15 or leap == _LI_UNSYNCHRONIZED:
        # Stratum 0 is a kiss-o'-death (RFC 4330 section 8): go away, or not synchronised yet.
        raise SNTPError("NTP server %s has no time to give (stratum %d, leap %d)" % (address, stratum, leap))
    seconds, fraction = struct.unpack_from(">II", reply, _TRANSMIT)
    if seconds == 0:
        raise SNTPError("NTP server %s: answer has no transmit time" % address)
    # Round to the nearest second: the fraction plus half the round trip.
    ms = (fraction >> 22) * 1000 // 1024 + round_trip_ms // 2
    return unix_seconds(seconds) + (ms + 500) // 1000


def _random8():
    try:
        from os import urandom
    except ImportError:  # a port without os.urandom
        from random import getrandbits

        return bytes(getrandbits(8) for _ in range(8))
    return urandom(8)
