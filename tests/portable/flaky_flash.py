# A flash that fails for a while, as a full filesystem (ENOSPC) or a worn
# chip does: a FlashStore's open files wrapped so that every write to them
# raises OSError while `failing` is set. Shared by the store and node tests.

ENOSPC = 28


class FlakyFlash:
    """Wraps the open files of a store; `failing` makes their writes raise,
    `refused` counts the writes that did."""

    def __init__(self, store):
        self.failing = False
        self.refused = 0
        store._files = [FlakyFile(self, f) for f in store._files]
        store._marker_file = FlakyFile(self, store._marker_file)


class FlakyFile:
    def __init__(self, flash, f):
        self.flash = flash
        self.f = f

    def seek(self, offset, whence=0):
        return self.f.seek(offset, whence)

    def write(self, data):
        if self.flash.failing:
            self.flash.refused += 1
            raise OSError(ENOSPC)
        return self.f.write(data)

    def readinto(self, buf):
        return self.f.readinto(buf)

    def flush(self):
        self.f.flush()

    def close(self):
        self.f.close()
