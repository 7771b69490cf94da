# The WebAssembly port has `logging`; a board's default firmware and the
# Unix port from PyPI have not. mqtt_async imports it when it can, so on
# the 32-bit runtime it would count a module it loads nowhere else: as
# there, the import fails and mqtt_async uses its own small logger.
raise ImportError("no module named 'logging'")
