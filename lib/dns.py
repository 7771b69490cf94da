# A DNS stub resolver for A records (RFC 1035) over UDP, with a deadline: on
# MicroPython, getaddrinfo() for a name waits with none, and a board must never
# hang. Runs on CPython, the Unix port and boards. Sections cited are RFC 1035's.
#   Resolver("192.168.1.1").resolve("broker.lan", 2000)  # -> "192.168.1.20"

import os
import select
import socket
import struct

from compat import const, ticks_add, ticks_diff, ticks_ms
from ipv4 import is_ipv4
from netcompat import POLLIN, poll_ready

_HEADER_SIZE = const(12)
_REPLY_SIZE = const(512)  # section 4.2.1: a UDP message is at most 512 bytes
_FLAG_QR = const(0x8000)  # section 4.1.1: set in a response
_FLAG_RD = const(0x0100)  # recursion desired: the router does the work
_RCODE_MASK = const(0x000F)
_RCODE_NXDOMAIN = const(3)
_TYPE_A = const(1)
_CLASS_IN = const(1)
_POINTER = const(0xC0)  # section 4.1.4: a length byte with both top bits set starts a pointer
_MAX_LABEL = const(63)  # section 2.3.4
_MAX_NAME = const(253)  # 255 on the wire, less the first length byte and the final zero
_CACHE_HOSTS = const(4)
_MAX_TTL_S = const(3600)  # an entry's age is a ticks difference: valid for half a period (~6 days)
_RCODES = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED")


class DNSError(OSError):
    """The name does not exist, the server failed, or its reply was malformed."""


class DNSTimeout(DNSError):
    """No usable answer within the deadline."""


class Resolver:
    def __init__(self, server, port=53, attempts=2):
        if attempts < 1:
            raise ValueError("attempts must be at least 1, got %d" % attempts)
        self.server = server  # a literal IPv4 address; may be set later (from DHCP)
        self.port = port
        self.attempts = attempts
        self.stale_answers = 0  # answers given from an expired entry because the server failed
        self._cache = {}  # host -> (address, ticks when obtained, ttl_ms)

    def resolve(self, host, timeout_ms):
        """host's IPv4 address as a dotted string, within timeout_ms."""
        if is_ipv4(host):
            return host
        host = host.lower()  # section 2.3.3: names compare without case
        question = _question(host)
        if not is_ipv4(self.server):
            raise ValueError("DNS server must be a literal IPv4 address, got %r" % (self.server,))
        cached = self._cache.get(host)
        if cached is not None and 0 <= ticks_diff(ticks_ms(), cached[1]) < cached[2]:
            return cached[0]
        try:
            answer = self._exchange(question, timeout_ms)
        except ValueError as e:  # from _answer: the reply is malformed
            return self._stale(host, DNSError(self._message(host, "malformed reply: %s" % e)))
        if answer is None:
            return self._stale(host, DNSTimeout(self._message(host, "no answer within %d ms" % timeout_ms)))
        rcode, address, ttl_s = answer
        if rcode == _RCODE_NXDOMAIN or (rcode == 0 and address is None):
            # The server says there is no address: an old one is no better.
            self._cache.pop(host, None)
            raise DNSError(self._message(host, "no such host (NXDOMAIN)" if rcode else "no A record in the reply"))
        if rcode:
            name = _RCODES[rcode] if rcode < len(_RCODES) else rcode
            return self._stale(host, DNSError(self._message(host, "server failed: %s" % name)))
        if host not in self._cache and len(self._cache) >= _CACHE_HOSTS:
            # A node resolves one or two hosts: which entry goes hardly matters.
            del self._cache[next(iter(self._cache))]
        self._cache[host] = (address, ticks_ms(), ttl_s * 1000)
        return address

    def _stale(self, host, error):
        # A router restarting takes its DNS down, but the broker has usually
        # kept its address: the last one known beats no connection at all.
        cached = self._cache.get(host)
        if cached is None:
            raise error
        self.stale_answers += 1
        return cached[0]

    def _message(self, host, what):
        return "resolving %r via %s:%d: %s" % (host, self.server, self.port, what)

    def _exchange(self, question, timeout_ms):
        """The reply's (rcode, address or None, ttl_s), or None at the deadline. The query is
        sent up to `attempts` times (UDP can be lost), each waiting its share of the time left."""
        deadline = ticks_add(ticks_ms(), timeout_ms)
        server = socket.getaddrinfo(self.server, self.port)[0][-1]  # a literal: no lookup
        query_id = int.from_bytes(os.urandom(2), "big")  # section 7.3: a reply must match it
        query = struct.pack(">HHHHHH", query_id, _FLAG_RD, 1, 0, 0, 0) + question
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            poller = select.poll()
            poller.register(sock, POLLIN)
            for sends_left in range(self.attempts, 0, -1):
                now = ticks_ms()
                left = ticks_diff(deadline, now)
                if left <= 0:
                    return None
                sock.sendto(query, server)
                answer = _receive(sock, poller, ticks_add(now, left // sends_left), query_id, question)
                if answer is not None:
                    return answer
        finally:
            sock.close()
        return None


def _receive(sock, poller, until, query_id, question):
    """The answer to this query arriving before `until` (ticks), or None."""
    while True:
        wait = ticks_diff(until, ticks_ms())
        if wait <= 0:
            return None
        if not poll_ready(poller, sock, wait):
            continue
        try:  # recv, not readinto: MicroPython's readinto would run the next datagram into this one
            reply = sock.recv(_REPLY_SIZE)
        except OSError:  # EAGAIN: poll said ready, then the kernel dropped it (bad checksum)
            continue  # any other error too: the deadline still ends the wait
        answer = _answer(reply, query_id, question)
        if answer is not None:
            return answer


def _question(host):
    """The question section for host's A record; ValueError for a name no server could answer."""
    name = host.encode()
    if name.endswith(b"."):  # a fully qualified name: the root label is implied
        name = name[:-1]
    labels = name.split(b".")
    if len(name) > _MAX_NAME or not all(0 < len(label) <= _MAX_LABEL for label in labels):
        raise ValueError("host name must be %d bytes at most, in labels of 1 to %d: %r" % (_MAX_NAME, _MAX_LABEL, host))
    question = bytearray()
    for label in labels:
        question.append(len(label))
        question.extend(label)
    return bytes(question) + struct.pack(">BHH", 0, _TYPE_A, _CLASS_IN)


def _answer(reply, query_id, question):
    """(rcode, address or None, ttl_s); None if not the reply to this query; ValueError if malformed."""
    length = len(reply)
    end = _HEADER_SIZE + len(question)
    if length < end:
        return None  # too short to hold the question: nothing says it is ours
    reply_id, flags, qdcount, ancount = struct.unpack_from(">HHHH", reply, 0)
    # Section 7.3: a stray or spoofed datagram must not be taken for the answer.
    if reply_id != query_id or not flags & _FLAG_QR or qdcount != 1 or reply[_HEADER_SIZE:end] != question:
        return None
    rcode = flags & _RCODE_MASK
    if rcode:
        return rcode, None, 0
    at = end
    for _ in range(ancount):  # CNAME records may come first; the A record is what counts
        at = _skip_name(reply, at, length)
        if at + 10 > length:
            raise ValueError("record header past the end at byte %d" % at)
        rtype, rclass, ttl_s, rdlength = struct.unpack_from(">HHIH", reply, at)
        at += 10
        if at + rdlength > length:
            raise ValueError("record data of %d bytes past the end at byte %d" % (rdlength, at))
        if rtype == _TYPE_A and rclass == _CLASS_IN and rdlength == 4:
            # RFC 2181 section 8: a TTL with the top bit set counts as zero.
            ttl_s = 0 if ttl_s & 0x80000000 else min(ttl_s, _MAX_TTL_S)
            return 0, "%d.%d.%d.%d" % (reply[at], reply[at + 1], reply[at + 2], reply[at + 3]), ttl_s
        at += rdlength
    return 0, None, 0


def _skip_name(reply, at, length):
    # Section 4.1.4: labels end in a zero byte or in a two-byte pointer to an
    # earlier name. Skipping needs no pointer followed, so none can loop.
    while at < length:
        size = reply[at]
        if size & _POINTER == _POINTER:
            if at + 2 > length or ((size & 0x3F) << 8 | reply[at + 1]) >= at:
                raise ValueError("name pointer at byte %d is cut off or does not point back" % at)
            return at + 2
        if size & _POINTER:
            raise ValueError("reserved label type 0x%02x at byte %d" % (size, at))
        if size == 0:
            return at + 1
        at += 1 + size
    raise ValueError("name past the end at byte %d" % at)
