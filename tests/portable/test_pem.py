# PEM to DER for the TLS files a board loads (lib/pem.py).
from pem import pem_to_der

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
