# The least of MicroPython's `machine` that mqtt_async needs at import on
# the Unix port (its default client id). Imported before the heap baseline:
# on a board it is built in.


def unique_id():
    return b"\x00bench"
