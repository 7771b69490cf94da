# Writes a release manifest (the format: ota.manifest): tools/ota.py and the
# tests. A node only reads them, so it never loads this.

from ota.manifest import HEADER, MAGIC


def text(header, files):
    """The manifest for header (a dict of HEADER's fields) and files, a list
    of (path, sha256 hex, size), sorted by path."""
    lines = [MAGIC]
    for key in HEADER:
        lines.append("%s %s" % (key, header[key]))
    total = 0
    for path, sha, size in sorted(files):
        lines.append("file %s %d %s" % (sha, size, path))
        total += size
    lines.append("end %d %d" % (len(files), total))
    return "\n".join(lines) + "\n"
