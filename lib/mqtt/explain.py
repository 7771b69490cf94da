# What is wrong with an MQTT string, in words, for the ValueError (our
# caller's mistake) or ProtocolError (the peer's) that says so: loaded by the
# first such error, so that a node whose strings are right never holds it.

from compat import const
from mqtt.topic import STRING, TOPIC_NAME, scan

_NUL = const(0x00)
_HASH = const(0x23)  # '#'
_PLUS = const(0x2B)  # '+'
_SHOW_MAX = const(60)


def empty(what):
    """The ValueError for an empty topic name or filter (3.1.1 section 4.7.3)."""
    return ValueError("%s is empty" % what)


def too_long(what, n, value):
    """The ValueError for a string over 65535 bytes (3.1.1 section 1.5.3)."""
    return ValueError("%s is %d bytes, more than 65535: %s" % (what, n, show(value)))


def describe(buf, index, start, rules):
    """What is wrong at buf[index], for an error message about the string
    starting at buf[start] that scan() stopped at."""
    b = buf[index]
    at = index - start
    if b == _NUL:
        return "contains U+0000 at byte %d" % at
    if b == _PLUS or b == _HASH:
        if rules == TOPIC_NAME:
            return "contains the wildcard '%s' at byte %d" % (chr(b), at)
        if b == _HASH:
            return "has '#' at byte %d, not alone as the last level" % at
        return "has '+' at byte %d, not alone in its level" % at
    return "is not valid UTF-8 at byte %d" % at


def show(value):
    """A value for an error message: quoted, shortened, control characters
    escaped; the same text on every runtime. Bytes that are not clean UTF-8
    (by scan(), stricter than some ports' decoders) are shown as bytes."""
    if isinstance(value, str):
        text = value
    else:
        data = bytes(value)
        if scan(data, 0, len(data), STRING) >= 0:
            if len(data) > _SHOW_MAX:
                return repr(data[:_SHOW_MAX]) + "..."
            return repr(data)
        text = str(data, "utf-8")
    quoted = "'"
    for ch in text[:_SHOW_MAX]:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            quoted += "\\x%02x" % code
        elif ch == "'" or ch == "\\":
            quoted += "\\" + ch
        else:
            quoted += ch
    return quoted + ("'..." if len(text) > _SHOW_MAX else "'")
