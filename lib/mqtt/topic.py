# MQTT 3.1.1 strings, topic names and topic filters: the one byte-level
# checker (UTF-8, NUL, wildcards) that both the caller-side validators here
# and the packet decoder use, and topic matching (3.1.1 section 4.7).
#
# The checker walks bytes by index and returns an int, so checking a topic
# held in bytes, or in the receive buffer, allocates nothing.

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
_DOLLAR = const(0x24)  # '$'
_SHOW_MAX = const(60)


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


def checked(value, rules, what):
    """value (str, bytes, bytearray or memoryview) as bytes, after checking it
    under `rules`; ValueError naming `what` and the value otherwise. Allocates
    nothing for a bytes-like value that is valid."""
    data = value.encode() if isinstance(value, str) else value
    n = len(data)
    # 3.1.1 section 4.7.3: topic names and filters are at least one character.
    if n == 0 and rules != STRING:
        raise ValueError("%s is empty" % what)
    # 3.1.1 section 1.5.3: a 2-byte length prefix, so at most 65535 bytes.
    if n > MAX_STRING_LENGTH:
        raise ValueError("%s is %d bytes, more than 65535: %s" % (what, n, show(value)))
    bad = scan(data, 0, n, rules)
    if bad >= 0:
        raise ValueError("%s %s: %s" % (what, describe(data, bad, 0, rules), show(value)))
    return data


def validate_topic_name(topic):
    """ValueError unless `topic` can be published to: 1..65535 bytes of
    UTF-8, no U+0000, no '+' or '#'."""
    checked(topic, TOPIC_NAME, "topic name")


def validate_topic_filter(topic_filter):
    """ValueError unless `topic_filter` can be subscribed to: 1..65535 bytes
    of UTF-8, no U+0000, '+' and '#' only as whole levels, '#' only last."""
    checked(topic_filter, TOPIC_FILTER, "topic filter")


def topic_matches(topic_filter, topic):
    """True if the topic name matches the topic filter (3.1.1 section 4.7).
    str or bytes-likes; both are assumed valid (see the validators)."""
    if isinstance(topic, str):
        topic = topic.encode()
    return topic_matches_at(topic_filter, topic, 0, len(topic))


def topic_matches_at(topic_filter, buf, start, length):
    """topic_matches for a topic held in buf[start:start + length] (as the
    decoder reports it), without slicing. Allocates nothing for a bytes-like
    filter."""
    if isinstance(topic_filter, str):
        topic_filter = topic_filter.encode()
    fi = 0
    fe = len(topic_filter)
    ti = start
    te = start + length
    # 3.1.1 section 4.7.2: a filter starting with a wildcard does not match
    # a topic name starting with '$'.
    if fe and ti < te and buf[ti] == _DOLLAR:
        first = topic_filter[0]
        if first == _PLUS or first == _HASH:
            return False
    while True:
        # At the start of a level in both.
        if fi < fe and topic_filter[fi] == _HASH:
            # 4.7.1.2: '#' matches this level and every level below it.
            return True
        f_level_end = fi
        while f_level_end < fe and topic_filter[f_level_end] != _SLASH:
            f_level_end += 1
        t_level_end = ti
        while t_level_end < te and buf[t_level_end] != _SLASH:
            t_level_end += 1
        if not (f_level_end - fi == 1 and topic_filter[fi] == _PLUS):
            # 4.7.1.3: '+' matches any one level, an empty one too; else the level matches exactly.
            if f_level_end - fi != t_level_end - ti:
                return False
            k = 0
            while fi + k < f_level_end:
                if topic_filter[fi + k] != buf[ti + k]:
                    return False
                k += 1
        filter_more = f_level_end < fe
        topic_more = t_level_end < te
        if not topic_more:
            if not filter_more:
                return True
            # 4.7.1.2: "sport/#" also matches the parent "sport".
            return fe - f_level_end == 2 and topic_filter[f_level_end + 1] == _HASH
        if not filter_more:
            return False
        fi = f_level_end + 1
        ti = t_level_end + 1
