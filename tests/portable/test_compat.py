# The runtime shim: ticks wrap the way MicroPython's do on every runtime.
from compat import const, pem_to_der, ticks_add, ticks_diff, ticks_ms, tls_context

_ANSWER = const(42)


def test_const_is_the_value():
    assert _ANSWER == 42


def test_ticks_diff_is_signed_across_the_wrap():
    start = ticks_ms()
    later = ticks_add(start, 1000)
    assert ticks_diff(later, start) == 1000
    assert ticks_diff(start, later) == -1000
    # A deadline just past the wrap point is still in the future.
    near_wrap = ticks_add(0, -10)
    assert ticks_diff(ticks_add(near_wrap, 20), near_wrap) == 20


def test_ticks_ms_moves_forward():
    from compat import sleep_ms

    a = ticks_ms()
    sleep_ms(5)
    assert ticks_diff(ticks_ms(), a) >= 4


# A PEM block's body is the base64 of its DER bytes (RFC 7468); these are
# short stand-ins, not real keys: pem_to_der does not parse ASN.1.
KEY_DER = bytes(range(40))
KEY_PEM = (
    b"-----BEGIN EC PRIVATE KEY-----\n"
    b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n"
    b"ISIjJCUmJw==\n"
    b"-----END EC PRIVATE KEY-----\n"
)


def block(label, body):
    return b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, body, label)


CERT_PEM = block(b"CERTIFICATE", b"AQID")  # base64 of 01 02 03


def test_pem_to_der_takes_the_block_with_the_label_asked_for():
    key = pem_to_der(KEY_PEM, b"PRIVATE KEY")
    assert key == KEY_DER
    assert pem_to_der(KEY_PEM.replace(b"\n", b"\r\n"), b"PRIVATE KEY") == KEY_DER
    assert pem_to_der(block(b"PRIVATE KEY", b"AQID"), b"PRIVATE KEY") == b"\x01\x02\x03"  # PKCS#8
    # `openssl ecparam -genkey` writes the curve first; a file may hold a certificate and its key.
    assert pem_to_der(block(b"EC PARAMETERS", b"BggqhkjOPQMBBw==") + KEY_PEM, b"PRIVATE KEY") == KEY_DER
    assert pem_to_der(CERT_PEM + KEY_PEM, b"PRIVATE KEY") == KEY_DER
    assert pem_to_der(KEY_PEM + CERT_PEM) == b"\x01\x02\x03"
    assert pem_to_der(KEY_DER, b"PRIVATE KEY") == KEY_DER  # DER passes through


def test_pem_to_der_without_the_block_asked_for_says_so():
    try:
        pem_to_der(KEY_PEM)
    except ValueError as e:
        assert "no PEM block labelled ...CERTIFICATE" in str(e), str(e)
    else:
        raise AssertionError("a key was taken for a certificate")


def test_pem_to_der_refuses_an_encrypted_key_and_says_what_to_do():
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAEC\n-----END ENCRYPTED PRIVATE KEY-----\n"
    legacy = KEY_PEM.replace(b"KEY-----\n", b"KEY-----\nProc-Type: 4,ENCRYPTED\n\n", 1)
    for data in (encrypted, legacy):
        try:
            pem_to_der(data, b"PRIVATE KEY")
        except ValueError as e:
            assert "encrypted" in str(e) and "passphrase" in str(e), str(e)
        else:
            raise AssertionError("an encrypted key was taken")


def test_a_client_certificate_needs_its_key():
    try:
        tls_context(certfile="/node.pem")
    except ValueError as e:
        assert "both certfile and keyfile" in str(e), str(e)
    else:
        raise AssertionError("a certificate without its key was taken")
