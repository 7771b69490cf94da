# MQTT 3.1.1 strings, topic names and topic filters: the one byte-level
# checker (UTF-8, NUL, wildcards) that both the caller-side validators here
# and the packet decoder use (3.1.1 sections 1.5.3, 4.7).
#
# The checker walks bytes by index and returns an int, so checking a topic
# held in bytes, or in the receive buffer, allocates nothing. What is wrong,
# in words, is in mqtt.explain, loaded by the first error.

from compat import const

# What scan() enforces on top of well-formed UTF-8 without U+0000.
STRING = const(0)  # any MQTT UTF-8 string (client id, user name)
TOPIC_NAME = const(1)  # no wildcards: a PUBLISH topic, a will topic
TOPIC_FILTER = const(2)  # wildcards only as whole levels, '#' only last

MAX_STRING_LENGTH = const(65535)

_NUL = const(0x00)
_HASH = const(0x23)  # '#'
_PLUS = const(0x2B)  # '+'
_SLASH = const(0x2F)  # '/'


def scan(buf, start, end, rules):
    """Checks buf[start:end] as an MQTT UTF-8 string under `rules` (STRING,
    TOPIC_NAME or TOPIC_FILTER). Returns -1 if it is fine, else the index in
    buf of the first offending byte: a NUL, a misplaced '+' or '#' (they are
    ASCII, so buf[index] tells which), or the lead byte of a sequence that is
    not well-formed UTF-8. Allocates nothing."""
    i = start
    while i < end:
        b = buf[i]
        if b < 0x80:
            # 3.1.1 section 1.5.3: a string MUST NOT contain U+0000.
            if b == _NUL:
                return i
            if b == _PLUS or b == _HASH:
                if rules == TOPIC_NAME:
                    # 3.1.1 section 4.7.1: wildcards MUST NOT be used in a topic name.
                    return i
                if rules == TOPIC_FILTER:
                    # 4.7.1.2 / 4.7.1.3: a wildcard occupies a whole level; '#' is the last one.
                    if i > start and buf[i - 1] != _SLASH:
                        return i
                    if b == _HASH:
                        if i + 1 != end:
                            return i
                    elif i + 1 < end and buf[i + 1] != _SLASH:
                        return i
            i += 1
            continue
        # 3.1.1 section 1.5.3: well-formed UTF-8 (RFC 3629): no overlong forms,
        # no surrogates U+D800..U+DFFF, nothing above U+10FFFF.
        if b < 0xC2 or b > 0xF4:
            return i
        if b < 0xE0:
            n = 1
            low = 0x80
            high = 0xBF
        elif b < 0xF0:
            n = 2
            low = 0xA0 if b == 0xE0 else 0x80
            high = 0x9F if b == 0xED else 0xBF
        else:
            n = 3
            low = 0x90 if b == 0xF0 else 0x80
            high = 0x8F if b == 0xF4 else 0xBF
        if i + n >= end:
            return i
        c = buf[i + 1]
        if c < low or c > high:
            return i
        j = i + 2
        while j <= i + n:
            if buf[j] & 0xC0 != 0x80:
                return i
            j += 1
        i = j
    return -1


def checked(value, rules, what):
    """value (str, bytes, bytearray or memoryview) as bytes, after checking it
    under `rules`; ValueError naming `what` and the value otherwise. Allocates
    nothing for a bytes-like value that is valid."""
    data = value.encode() if isinstance(value, str) else value
    n = len(data)
    # 3.1.1 section 4.7.3: topic names and filters are at least one character.
    if n == 0 and rules != STRING:
        from mqtt.explain import empty

        raise empty(what)
    # 3.1.1 section 1.5.3: a 2-byte length prefix, so at most 65535 bytes.
    if n > MAX_STRING_LENGTH:
        from mqtt.explain import too_long

        raise too_long(what, n, value)
    bad = scan(data, 0, n, rules)
    if bad >= 0:
        from mqtt.explain import describe, show

        raise ValueError("%s %s: %s" % (what, describe(data, bad, 0, rules), show(value)))
    return data


def validate_topic_name(topic):
    """ValueError unless `topic` can be published to: 1..65535 bytes of
    UTF-8, no U+0000, no '+' or '#'."""
    checked(topic, TOPIC_NAME, "topic name")


# Topic matching (topic_matches, topic_matches_at) is in mqtt.topic_match: a
# client never needs it (the broker matches); validate_topic_filter in
# mqtt.subscribe, with the encoders that take filters. `from mqtt.topic
# import topic_matches` still works (PEP 562's module __getattr__;
# MicroPython has it too), loading mqtt.topic_match when first asked, which
# knows where each is (names as string literals here would take heap).
def __getattr__(name):
    if name.startswith("__"):  # CPython's import asks for __path__: not one of ours
        raise AttributeError(name)
    from mqtt import topic_match

    return topic_match.handed_over(name)
