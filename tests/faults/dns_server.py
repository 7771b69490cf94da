"""A fake DNS server for tests (CPython, a background thread, UDP on
127.0.0.1, an ephemeral port) whose behaviour a test switches at run time.

    with DNSServer({"broker.lan": ("10.0.0.5", 300)}) as dns:
        ... resolve through 127.0.0.1:dns.port ...
        dns.mode = "silent"        # a hung DNS: never answers
        dns.queries                # queries received

Modes (MODES):
  answer      the table's A record with its TTL, through the CNAME chain in
              `cnames` if the name has one, every name compressed (RFC 1035
              section 4.1.4); NXDOMAIN for a name in neither table
  silent      never answers
  nxdomain, servfail, refused
              that rcode
  empty       NOERROR with no records: the name exists, with no IPv4 address
  garbage     the right id and question, then a malformed answer section:
              `garbage` picks which (GARBAGE)
  wrong_id    first a decoy carrying DECOY_ADDRESS (`decoy`: "id" another
              id, "qr" the QR bit clear, "question" another name), then the
              real answer
  drop_first  ignores the first `drop` queries, then answers
`then` is a list of modes used one per query before `mode` applies again.
"""

import socket
import struct
import threading
import time

MODES = ("answer", "silent", "nxdomain", "servfail", "refused", "empty", "garbage", "wrong_id", "drop_first")
GARBAGE = (
    "record_cut",  # an answer record that stops inside its fixed fields
    "rdata_cut",  # an A record whose 4 bytes of address are 2
    "label_cut",  # an owner name whose label runs past the end
    "pointer_cut",  # an owner name that is one byte of a pointer
    "pointer_forward",  # a pointer to a byte after itself
    "reserved_label",  # a label type 01 (section 4.1.4 reserves 01 and 10)
    "count_lies",  # ancount 3, one record present
)
DECOYS = ("id", "qr", "question")
DECOY_ADDRESS = "6.6.6.6"

_QR_RD_RA = 0x8180
_RCODES = {"nxdomain": 3, "servfail": 2, "refused": 5}
_TYPE_A = 1
_TYPE_CNAME = 5
_CLASS_IN = 1
_LIFETIME_S = 60  # the thread ends by itself, whatever the test does


def put_name(message, offsets, name):
    """Appends name to message, as a pointer to an earlier copy of its
    longest known suffix (offsets: lower-case suffix -> offset)."""
    labels = name.split(".")
    for i, label in enumerate(labels):
        suffix = ".".join(labels[i:]).lower()
        if suffix in offsets:
            message += struct.pack(">H", 0xC000 | offsets[suffix])
            return
        offsets[suffix] = len(message)
        message.append(len(label))
        message += label.encode()
    message.append(0)


def parse_query(query):
    """(id, name, question bytes) of a query, or None if it is not one."""
    if len(query) < 12:
        return None
    at = 12
    labels = []
    while at < len(query) and query[at]:
        labels.append(query[at + 1 : at + 1 + query[at]].decode(errors="replace"))
        at += 1 + query[at]
    if at + 5 > len(query):
        return None
    return struct.unpack_from(">H", query)[0], ".".join(labels), query[12 : at + 5]


class DNSServer:
    def __init__(self, records=None, cnames=None):
        self.records = dict(records or {})  # name -> (IPv4 address, ttl_s)
        self.cnames = dict(cnames or {})  # name -> canonical name
        self.mode = "answer"
        self.then = []
        self.garbage = GARBAGE[0]
        self.decoy = DECOYS[0]
        self.drop = 1
        self.queries = 0
        self.names = []  # every name asked, in order
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self):
        ends = time.monotonic() + _LIFETIME_S
        while not self._stop.is_set() and time.monotonic() < ends:
            try:
                query, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            parsed = parse_query(query)
            if parsed is None:
                continue
            self.queries += 1
            self.names.append(parsed[1])
            mode = self.then.pop(0) if self.then else self.mode
            for reply in self._replies(mode, *parsed):
                self.sock.sendto(reply, peer)

    def _replies(self, mode, query_id, name, question):
        if mode == "silent":
            return []
        if mode == "drop_first" and self.drop > 0:
            self.drop -= 1
            return []
        if mode in _RCODES:
            return [bytes(self._message(query_id, question, _RCODES[mode])[0])]
        if mode == "empty":
            return [bytes(self._message(query_id, question, 0)[0])]
        if mode == "garbage":
            return [self._garbage(query_id, question)]
        replies = []
        if mode == "wrong_id":
            decoy_id = query_id ^ 1 if self.decoy == "id" else query_id
            decoy_question = question if self.decoy != "question" else _question("other." + name)
            decoy, offsets = self._message(decoy_id, decoy_question, 0, ancount=1)
            _put_record(decoy, offsets, name, _TYPE_A, 300, socket.inet_aton(DECOY_ADDRESS))
            if self.decoy == "qr":
                decoy[2] &= 0x7F
            replies.append(bytes(decoy))
        replies.append(self._answer(query_id, name, question))
        return replies

    def _message(self, query_id, question, rcode, ancount=0):
        message = bytearray(struct.pack(">HHHHHH", query_id, _QR_RD_RA | rcode, 1, ancount, 0, 0))
        offsets = {}
        put_name(message, offsets, parse_query(bytes(12) + question)[1])  # the question as asked
        message += question[-4:]
        return message, offsets

    def _answer(self, query_id, name, question):
        chain = [name]
        while chain[-1].lower() in self.cnames and len(chain) < 8:
            chain.append(self.cnames[chain[-1].lower()])
        if chain[-1].lower() not in self.records:
            return bytes(self._message(query_id, question, 3)[0])
        address, ttl_s = self.records[chain[-1].lower()]
        message, offsets = self._message(query_id, question, 0, ancount=len(chain))
        for alias, target in zip(chain, chain[1:], strict=False):
            _put_record(message, offsets, alias, _TYPE_CNAME, ttl_s, b"", name_in_rdata=target)
        _put_record(message, offsets, chain[-1], _TYPE_A, ttl_s, socket.inet_aton(address))
        return bytes(message)

    def _garbage(self, query_id, question):
        kind = self.garbage
        message, offsets = self._message(query_id, question, 0, ancount=3 if kind == "count_lies" else 1)
        start = len(message)
        if kind == "count_lies":
            _put_record(message, offsets, "x.lan", _TYPE_CNAME, 60, b"", name_in_rdata="y.lan")
        elif kind == "label_cut":
            message += b"\x28abc"
        elif kind == "pointer_cut":
            message += b"\xc0"
        elif kind == "pointer_forward":
            message += b"\xc0\xff" + struct.pack(">HHIH", _TYPE_A, _CLASS_IN, 60, 4) + bytes(4)
        elif kind == "reserved_label":
            message += b"\x41" + bytes(14)
        else:
            _put_record(message, offsets, "x.lan", _TYPE_A, 60, socket.inet_aton("10.9.9.9"))
            del message[len(message) - (2 if kind == "rdata_cut" else 8) :]
        if len(message) == start:
            raise ValueError("garbage kind %r wrote nothing" % kind)
        return bytes(message)


def _question(name):
    wire = bytearray()
    for label in name.split("."):
        wire.append(len(label))
        wire += label.encode()
    return bytes(wire) + struct.pack(">BHH", 0, _TYPE_A, _CLASS_IN)


def _put_record(message, offsets, owner, rtype, ttl_s, rdata, name_in_rdata=None):
    put_name(message, offsets, owner)
    message += struct.pack(">HHI", rtype, _CLASS_IN, ttl_s)
    length_at = len(message)
    message += b"\0\0"
    if name_in_rdata is not None:  # a CNAME's data is a name, compressed like any other
        put_name(message, offsets, name_in_rdata)
    else:
        message += rdata
    struct.pack_into(">H", message, length_at, len(message) - length_at - 2)
