"""Username and password against a mosquitto with a password file, on
CPython and the Unix port. (A SUBACK refusal, 0x80, is pinned byte for byte
in tests/portable/test_session.py: mosquitto 2.0.11 grants a 3.1.1
subscription that its ACL denies and simply delivers nothing.)"""

import os
import shutil
import subprocess

import pytest

from harness import micropython
from mqtt.client import ConnectRefused, MQTTClient

SCRIPT = """
import sys
from mqtt.client import MQTTClient, ConnectRefused
from support import poll_until
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = MQTTClient("auth-mp", host, port, username=user, password=password)
try:
    c.connect()
except ConnectRefused as e:
    print("REFUSED", e.return_code)
    sys.exit(0)
granted = []
c.on_subscribe = lambda cl, u, pid, g: granted.append(g)
c.subscribe("house/kitchen/#", 1)
poll_until(c, lambda: granted)
print("GRANTED", granted[0][0])
"""


def mosquitto_passwd():
    for candidate in (shutil.which("mosquitto_passwd"), "/usr/bin/mosquitto_passwd"):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.fail("mosquitto_passwd not found (it comes with the mosquitto package)")


@pytest.fixture
def auth_broker(make_broker, tmp_path):
    passwords = tmp_path / "passwords"
    subprocess.run([mosquitto_passwd(), "-b", "-c", str(passwords), "node", "s3cret"], check=True)
    return make_broker(extra_config="password_file %s" % passwords)


def test_right_password_connects_and_subscribes(auth_broker):
    client = MQTTClient("auth-ok", *auth_broker.address, username="node", password="s3cret")
    granted = []
    client.on_subscribe = lambda c, u, packet_id, g: granted.append(g)
    client.connect()
    client.subscribe("house/kitchen/#", 1)
    for _ in range(100):
        if granted:
            break
        client.poll(50)
    assert granted == [(1,)]
    client.disconnect()


def test_wrong_password_is_refused_with_the_reason(auth_broker):
    client = MQTTClient("auth-bad", *auth_broker.address, username="node", password="wrong")
    with pytest.raises(ConnectRefused) as refused:
        client.connect()
    assert refused.value.return_code in (4, 5)
    assert refused.value.reason in ("bad user name or password", "not authorized")


@pytest.mark.parametrize("password, expected", [("s3cret", "GRANTED 1"), ("wrong", "REFUSED")])
def test_username_password_on_the_unix_port(auth_broker, tmp_path, password, expected):
    (tmp_path / "auth_script.py").write_text(SCRIPT)
    host, port = auth_broker.address
    result = micropython.run([str(tmp_path / "auth_script.py"), host, str(port), "node", password], timeout=30)
    assert result.stdout.startswith(expected), result.stdout + result.stderr
