"""`make bench` (`python -m tools.bench`): this project's MQTT client side by
side with umqtt.simple (as it comes, and with TCP_NODELAY set by the
caller), mqtt_async (micropython-mqtt) and chumicro-mqtt, in ONE run on the
MicroPython Unix port against one private mosquitto, plus the 32-bit
figures from the WebAssembly port. Writes bench/RESULTS.md,
bench/results.json and bench/throughput.png.

    .venv/bin/python -m tools.bench           # the full run (several minutes)
    .venv/bin/python -m tools.bench --quick   # our client and a raw socket, small counts, one round

One module per concern:

    settings.py   paths, counts, the peers' pinned versions
    clients.py    the clients: which, fetched from PyPI, compiled by mpy-cross, .mpy sizes
    unixport.py   one client script on the Unix port (bench/clients/<client>.py), and the
                  QoS 0 arrival run with the host's subscriber (subscriber.py)
    board32.py    the 32-bit figures (bench/clients/board32.py on the WebAssembly port)
    figures.py    per-run records -> figures (median, min, max over the rounds), ratios
    report.py     RESULTS.md
    plot.py       throughput.png
    context.py    machine, versions, git commit
    driver.py     the run: set up, rounds, 32-bit, write everything
"""
