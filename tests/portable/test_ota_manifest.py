# The release manifest (lib/ota/manifest.py, written by manifest_text): what
# the node takes, read a line at a time as it reads it from flash and
# checked as ota.prepare checks it before the first file chunk, and each way
# it is refused, with the message the refusal carries.
import io

from ota import begin, manifest
from ota.checks import checked_files, checked_header, path_error
from ota.errors import ManifestError
from ota.manifest import Reader
from ota.manifest_text import text

HEADER = {
    "version": "1.5.0",
    "board": "pico_w",
    "node": "pico-bedroom",
    "arch": "armv6m",
    "deadline_s": 300,
    "boots": 3,
    "summary": "Diagnostics every 300 s",
}
SHA = "ab" * 32
FILES = [("main.py", SHA, 100), ("board.py", SHA, 50), ("lib/mqtt/client.mpy", SHA, 20113)]


def read_all(manifest_text):
    reader = Reader(io.BytesIO(manifest_text.encode()))
    header = checked_header(reader.header())
    checked_files(reader)
    reader = Reader(io.BytesIO(manifest_text.encode()))
    reader.header()
    files = []
    while reader.next():
        files.append((reader.path, str(reader.sha, "ascii"), reader.size))
    return header, files, reader.total


def refused(manifest_text):
    try:
        read_all(manifest_text)
    except ManifestError as e:
        return str(e)
    raise AssertionError("taken: %r" % manifest_text)


def test_a_manifest_reads_back_as_written():
    header, files, total = read_all(text(HEADER, FILES))
    assert header["version"] == "1.5.0" and header["arch"] == "armv6m"
    assert header["deadline_s"] == 300 and header["boots"] == 3
    assert header["summary"] == "Diagnostics every 300 s"
    assert files == sorted(FILES)  # sorted by path
    assert total == 100 + 50 + 20113


def test_the_text_is_a_line_per_field_and_per_file():
    lines = text(HEADER, FILES).splitlines()
    assert lines[0] == "ota-release 1"
    assert lines[1] == "version 1.5.0"
    assert lines[8] == "file %s 50 board.py" % SHA
    assert lines[-1] == "end 3 20263"


def test_a_truncated_manifest_is_refused():
    whole = text(HEADER, FILES)
    lines = whole.splitlines(True)
    assert "no end line after 2 files" in refused("".join(lines[:-2]))
    assert "ends in its header" in refused("".join(lines[:4]))
    assert "its last line has no end" in refused(whole[:-1])
    # An end line that does not match what came before it.
    assert "its end line says 'end 4 20263'" in refused(whole.replace("end 3 ", "end 4 "))


def test_paths_outside_the_tree_are_refused():
    for path in ("../boot.py", "lib/../../x.mpy", "/main.py", "lib//a.mpy", "lib/./a.mpy"):
        assert "outside the release tree" in path_error(path), path
    assert "outside the release tree" in refused(text(HEADER, FILES + [("lib/../x.mpy", SHA, 1)]))


def test_secrets_and_boot_py_are_never_in_a_release():
    for path in ("secrets.py", "lib/secrets.mpy", "lib/node/secrets.py", "lib/secrets/__init__.py"):
        assert "secrets" in path_error(path), path
    assert "boot.py" in path_error("boot.py")
    assert "would overwrite or shadow secrets.py" in refused(text(HEADER, FILES + [("secrets.py", SHA, 10)]))


def test_only_python_at_the_top_and_modules_under_lib():
    assert path_error("main.py") is None
    assert path_error("firmware_version.py") is None
    assert path_error("lib/node/node.mpy") is None
    assert "only .py files" in path_error("ca.pem")
    assert "under lib/" in path_error("tls/node.key")
    assert "only .mpy and .py" in path_error("lib/data.bin")
    assert "only letters" in path_error("lib/a b.mpy")


def test_header_fields_are_checked():
    assert "must be 2 to 3600" in refused(text(dict(HEADER, deadline_s=1), FILES))
    assert "must be 1 to 10" in refused(text(dict(HEADER, boots=0), FILES))
    assert "whole number" in refused(text(dict(HEADER, boots="three"), FILES))
    assert "unknown field 'colour'" in refused(text(HEADER, FILES).replace("summary", "colour"))
    missing = "\n".join(line for line in text(HEADER, FILES).splitlines() if not line.startswith("arch")) + "\n"
    assert "no 'arch'" in refused(missing)
    assert "not a release manifest" in refused("hello\n")


def test_repeated_or_unsorted_paths_are_refused():
    doubled = text(HEADER, FILES).replace("main.py", "board.py")
    assert "sorted and unique" in refused(doubled)


def test_a_bad_hash_or_size_is_refused():
    assert "64 lowercase hex" in refused(text(HEADER, [("main.py", "AB" * 32, 1)]))
    assert "size of main.py must be 0 to" in refused(text(HEADER, [("main.py", SHA, 1 << 21)]))


def test_the_first_half_of_an_update_knows_the_limits_without_loading_the_reader():
    assert begin.MAX_MANIFEST_BYTES == manifest.MAX_MANIFEST_BYTES
    assert begin.MAX_FILES == manifest.MAX_FILES


def test_texts_are_counted_in_bytes_and_the_version_is_a_name():
    # The pointer file keeps the version up to three times within its size.
    assert "1 to 200 bytes" in refused(text(dict(HEADER, summary="ü" * 101), FILES))
    assert "printable ASCII" in refused(text(dict(HEADER, version="1.0 beta"), FILES))
    assert "printable ASCII" in refused(text(dict(HEADER, version="v1.0-é"), FILES))
