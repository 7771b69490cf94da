"""The host's half of an update (tools/ota.py) without a node: what a
release carries and what it leaves out, its manifest read back by the
node's own reader, its HMAC as CPython's hmac computes it, and the node's
HMAC (lib/ota/hmac256.py) against CPython's on random keys and messages."""

import hashlib
import hmac
import io
import os
import random

import pytest

from ota import hmac256
from ota.checks import checked_files, checked_header
from ota.manifest import Reader
from tools import deploy
from tools import ota as ota_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "a1" * 32


@pytest.fixture
def secrets_path(tmp_path):
    path = tmp_path / "secrets.py"
    path.write_text('WIFI_PASSWORD = "x"\nMQTT_PASSWORD = None\nOTA_KEY = %r\n' % KEY)
    return str(path)


def build(tmp_path, secrets_path, *args):
    parsed = ota_tool.parser().parse_args(
        ["--board", "pico_w", "--secrets", secrets_path, "--build-dir", str(tmp_path / "build"), *args]
    )
    return ota_tool.build_release(parsed)


def test_the_nodes_hmac_is_cpythons():
    rng = random.Random(20261129)
    for _ in range(200):
        key = rng.randbytes(rng.choice((0, 1, 16, 32, 63, 64, 65, 200)))
        message = rng.randbytes(rng.randrange(0, 3000))
        assert hmac256.hmac_sha256(key, message) == hmac.new(key, message, hashlib.sha256).digest()


def test_a_release_is_what_deploy_copies_less_boot_and_secrets(tmp_path, secrets_path):
    board, release = build(tmp_path, secrets_path, "--version", "1.0")
    deployed = {remote[1:] for _, remote in deploy.build("pico_w", ROOT, str(tmp_path / "deploy"), secrets_path)}
    assert set(release.paths) == deployed - {"boot.py", "secrets.py"}
    assert "main.py" in release.paths and "board.py" in release.paths
    assert all(path.endswith(".mpy") for path in release.paths if path.startswith("lib/"))
    assert release.header["arch"] == "armv6m" and release.header["node"] == "pico-bedroom"
    # The node reports the release's version as its firmware's.
    assert release.files["firmware_version.py"] == b"VERSION = '1.0'  # written by tools/ota.py\n"


def test_the_manifest_passes_the_nodes_checks_and_is_signed_with_the_key(tmp_path, secrets_path):
    _, release = build(tmp_path, secrets_path, "--version", "1.0", "--deadline-s", "120", "--boots", "2")
    reader = Reader(io.BytesIO(release.manifest))
    header = checked_header(reader.header())
    files, bootable = checked_files(reader)
    assert bootable and files == len(release.paths)
    assert header["deadline_s"] == 120 and header["boots"] == 2
    assert release.tag == hmac.new(bytes.fromhex(KEY), release.manifest, hashlib.sha256).digest()
    assert release.id == release.tag[:8].hex()
    begin = release.begin().split()
    assert begin[0] == "ota1" and begin[1] == release.tag.hex() and int(begin[3]) == release.bytes


def test_chunks_carry_the_release_file_and_index(tmp_path, secrets_path):
    _, release = build(tmp_path, secrets_path, "--version", "1.0", "--chunk", "256")
    file = release.paths.index("main.py") + 1
    payload = release.chunk_payload(file, 1)
    assert payload[:8] == release.tag[:8]
    assert payload[8:10] == file.to_bytes(2, "big") and payload[10:12] == (1).to_bytes(2, "big")
    assert payload[12:] == release.files["main.py"][256:512]


def test_node_names_the_node_in_its_board_file(tmp_path, secrets_path):
    _, release = build(tmp_path, secrets_path, "--version", "1.0", "--node", "pico-attic")
    assert release.header["node"] == "pico-attic"
    assert release.files["board.py"].endswith(b"NODE = 'pico-attic'  # make ota NODE=pico-attic\n")


def test_a_secrets_file_without_a_key_is_refused_with_how_to_make_one(tmp_path):
    path = tmp_path / "secrets.py"
    path.write_text('WIFI_PASSWORD = "x"\n')
    with pytest.raises(ota_tool.OtaError, match="no OTA_KEY. Add one"):
        ota_tool.load_key(str(path))


def test_new_key_prints_a_line_for_the_secrets_file(capsys):
    assert ota_tool.main(["--new-key"]) == 0
    line = capsys.readouterr().out
    namespace = {}
    exec(line, namespace)
    assert len(bytes.fromhex(namespace["OTA_KEY"])) == 32
