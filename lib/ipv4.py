# Whether a host is an IPv4 literal: the resolver skips the lookup for one,
# and the board checks take one for a DNS server. Apart from dns, which
# imports socket, so that a board file is checked on any runtime.


def is_ipv4(text):
    """True for a dotted-quad IPv4 literal: "192.168.1.10"."""
    parts = text.split(".")
    return len(parts) == 4 and all(0 < len(p) <= 3 and p.isdigit() and int(p) <= 255 for p in parts)
