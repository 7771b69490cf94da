# PEM to DER for TLS files: MicroPython's mbedtls builds take certificates
# and keys as DER only, so a board can ship the same PEM files as the broker.
# No network module here: it is plain text handling.


def pem_to_der(data, label=b"CERTIFICATE"):
    """The first PEM block whose label ends with `label` ("CERTIFICATE", or
    "PRIVATE KEY" for a key) as DER; DER passes through. Other blocks are
    skipped: `openssl ecparam -genkey` writes EC PARAMETERS before the key,
    and one file may hold a certificate and its key."""
    if isinstance(data, str):
        data = data.encode()
    begin = data.find(b"-----BEGIN ")
    if begin < 0:
        return data
    while begin >= 0:
        label_end = data.find(b"-----", begin + 11)
        if label_end < 0:
            break
        if data[begin + 11 : label_end].endswith(label):
            return _pem_block(data, begin, label_end + 5)
        begin = data.find(b"-----BEGIN ", label_end)
    raise ValueError("no PEM block labelled ...%s in the file" % label.decode())


def _pem_block(data, begin, start):
    from binascii import a2b_base64

    end = data.find(b"-----END", start)
    if end < 0:
        raise ValueError("PEM block without an END line")
    if data.find(b"ENCRYPTED", begin, end) >= 0:
        # A board has no passphrase to give: store the key unencrypted.
        raise ValueError("PEM key is encrypted: write it out without a passphrase (openssl pkey -in KEY -out KEY)")
    return a2b_base64(data[start:end].replace(b"\n", b"").replace(b"\r", b""))
