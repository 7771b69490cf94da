# The update's one error type, in a module of its own so that code which
# only raises it does not load the manifest reader with it.


class ManifestError(ValueError):
    """The release is not one this node takes; the message says why."""
