# Topic matching (3.1.1 section 4.7): does a topic name match a topic
# filter. A client never needs it to publish or receive (the broker does the
# matching), so it is apart from mqtt.topic; an application routing its
# incoming messages by filter imports it. Reached as mqtt.topic.topic_matches
# too.

from compat import const

_HASH = const(0x23)  # '#'
_PLUS = const(0x2B)  # '+'
_SLASH = const(0x2F)  # '/'
_DOLLAR = const(0x24)  # '$'


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


def handed_over(name):
    """What mqtt.topic hands over for `from mqtt.topic import name` (its
    __getattr__): topic matching from here, validate_topic_filter from
    mqtt.subscribe."""
    if name == "topic_matches" or name == "topic_matches_at":
        return globals()[name]
    if name == "validate_topic_filter":
        from mqtt.subscribe import validate_topic_filter

        return validate_topic_filter
    raise AttributeError(name)
