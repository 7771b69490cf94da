# netcompat's socket helpers on CPython: MicroPython's stream shape (None
# when a non-blocking socket would block) over send / recv_into. Loaded by
# netcompat only on CPython: never on a board.
import ssl as _ssl


def socket_write(sock, buf, offset, length):
    try:
        return sock.send(memoryview(buf)[offset : offset + length])
    except (BlockingIOError, _ssl.SSLWantWriteError, _ssl.SSLWantReadError):
        return None


def socket_readinto(sock, buf, length):
    try:
        return sock.recv_into(buf, length)
    except (BlockingIOError, _ssl.SSLWantReadError, _ssl.SSLWantWriteError):
        return None


def poll_ready(poller, sock, timeout_ms):
    # Bytes already decrypted by the TLS layer do not make the socket readable.
    if getattr(sock, "pending", None) and sock.pending():
        return True
    return bool(poller.poll(timeout_ms))
