# Fixed-point numbers as plain text, written into a caller's buffer without
# allocating: 2150 with 2 decimals becomes b"21.50". Sensor drivers hand
# out scaled ints (floats are heap objects on MicroPython).

from compat import const

_DIGIT_0 = const(48)
_MINUS = const(45)
_POINT = const(46)


def format_fixed(buf, offset, value, decimals):
    """Write value / 10**decimals into buf at offset; return the length."""
    start = offset
    if value < 0:
        buf[offset] = _MINUS
        offset += 1
        value = -value
    # Count digits: at least decimals + 1, so 5 with 2 decimals is "0.05".
    digits = 1
    scale = 10
    while scale <= value:
        digits += 1
        scale *= 10
    if digits < decimals + 1:
        digits = decimals + 1
    length = digits + (1 if decimals else 0)
    if offset + length > len(buf):
        raise ValueError("buffer of %d bytes too small for %d digits" % (len(buf), digits))
    # Fill from the right.
    pos = offset + length - 1
    for i in range(digits):
        if decimals and i == decimals:
            buf[pos] = _POINT
            pos -= 1
        buf[pos] = _DIGIT_0 + value % 10
        value //= 10
        pos -= 1
    return offset + length - start
