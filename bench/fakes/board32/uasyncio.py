# `uasyncio`, the old name a board's firmware still answers to (mqtt_async
# imports it); the WebAssembly port has only `asyncio`. Imported before
# the heap baseline, as it is frozen into a board's firmware.
import asyncio as _asyncio


def __getattr__(name):
    return getattr(_asyncio, name)
