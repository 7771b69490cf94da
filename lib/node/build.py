# Building a Node from the board's config: its sensors and channels, the
# flash store, the DNS resolver, the TLS context, the MQTT client and the
# over-the-air updater. Node() loads this module and forgets it once the
# node is built (as firmware/main.py forgets node.config): none of this
# code is needed after start-up.

from compat import ticks_add
from mqtt.packet import remaining_length_size
from node.node import Channel, MQTTClient, Ring, Sensor, _forget_module, _step_deadline_ms
from sensors import make as make_sensor

_PAYLOAD_SIZE = 48  # {"v":-12345.67,"t":"2026-11-23T08:00:00Z"} fits
_REBOOT_GRACE_S = 30  # no reboot command taken before the node has been up this long
_TX_MIN = 512  # the smallest transmit buffer: the diagnostics report fits
# With DISCOVERY, the transmit buffer a discovery config goes out of (QoS 0:
# no in-flight slot, see node.announce): the one carrying the whole device
# block is about 650 B for the boards in boards/.
_TX_DISCOVERY = 1024


def build(node, config, hardware, client, log, now):
    """now: ticks_ms() (node.node's, which tests may replace)."""
    prefix, room, name = config["PREFIX"], config["ROOM"], config["NODE"]
    base = "%s/%s/%s" % (prefix, room, name)
    node.status_topic = base + "/status"
    node.diagnostics_topic = base + "/diagnostics"
    node.command_prefix = base + "/set/"
    node.discovery = config["DISCOVERY"]
    # A sleeping node's readings are retained: Home Assistant subscribes
    # to a reading after its discovery config arrives, which is after a
    # first wake's readings went out, and it may restart while the node
    # sleeps. An always-on node's come again within a period.
    node.retain_readings = bool(config["DEEP_SLEEP_S"])
    node._announce_due = False  # discovery configs to publish at the next step
    node._states_due = False  # Home Assistant restarted: the last readings to publish again
    node._announced_at = None  # tick of the last announce; None: since connect, none
    node._report_due = False  # a diagnostics report to publish at the next step
    # ticks_diff measures less than 2^29 ms (6.2 days) on a board, so
    # uptime is counted up a second at a time, not measured from start-up.
    node.uptime_s = 0
    node._uptime_mark = now

    sensors = node.sensors = []
    channels = node.channels = []  # every sensor's, in order
    for s in config["SENSORS"]:
        bus = hardware(s, config["BUSES"].get(s["bus"])) if hardware else None
        try:
            driver = make_sensor(s["driver"], bus, **s["params"])
        except (ValueError, TypeError) as e:
            # A parameter's value the driver refuses: a board error, named.
            raise ValueError("board SENSORS[%d] (%s) params: %s" % (len(sensors), s["driver"], e))
        sensor = Sensor(driver, s, s["period_s"] * 1000, now, len(channels))
        sensors.append(sensor)
        for k, quantity in enumerate(driver.CHANNELS):
            sensor_name = s["prefix"] + quantity
            if any(c.name == sensor_name for c in channels):
                raise ValueError(
                    "board SENSORS: two sensors publish %r; give one a 'prefix' (e.g. 'outdoor_')" % sensor_name
                )
            topic = ("%s/%s/%s" % (prefix, room, sensor_name)).encode()
            _check_room(topic, config["MAX_PACKET"])
            channels.append(Channel(sensor, k, sensor_name, topic, driver.DECIMALS[k], s["qos"]))
    node.payload = bytearray(_PAYLOAD_SIZE)
    node.json_payload = config["PAYLOAD"] == "json"
    if node.json_payload:
        # Only JSON payloads carry the time; the clock takes its anchor from
        # the board's at this import, before the first reading.
        from node.timestamp import format_json, now_s

        node.now_s = now_s
        node.format_json = format_json
    node.ntp = config["NTP"] if node.json_payload else None  # only JSON payloads carry the time
    node.next_ntp = now
    node.ntp_backoff = None  # made at the first failed sync (node.node's _sync_clock)
    node.resolver = _resolver(config)
    node._wifi_ups_seen = -1
    node.ring = Ring(config["BUFFER"])
    node.store = _open_store(config, [c.name for c in channels], log)
    node.store_errors = 0
    node._disconnects_seen = 0
    node.published = 0
    node.sensor_errors = 0
    node.reboot_requested = False
    # Commands from a flood: see node.commands.
    node.reboot_grace_s = _REBOOT_GRACE_S
    node.commands_dropped = 0
    node._forced_at = None
    node._told_dropped = False
    node.next_diagnostics = ticks_add(now, config["DIAGNOSTICS_S"] * 1000)

    # Over-the-air updates, where the board's secrets hold a key: the
    # updater (ota.updater) takes its messages before the commands do.
    node.ota = None
    updater = _updater_module(config, log)
    broker = config["BROKER"]
    if client is None:
        client = MQTTClient(
            name,
            broker["host"],
            broker["port"],
            keepalive=broker["keepalive_s"],
            clean_session=broker["clean_session"],
            username=broker["username"],
            password=broker["password"],
            ssl_context=_tls_context(broker),
            inflight_max=config["INFLIGHT"],
            max_packet=config["MAX_PACKET"],
            # QoS 0 packets go out of this buffer: the diagnostics report
            # (up to ~400 B with its topic) and the discovery configs
            # must fit whatever MAX_PACKET is.
            tx_size=_tx_size(config),
            # An update's chunk arrives whole in the receive buffer.
            rx_size=updater.RX_SIZE if updater is not None else 512,
            # A blocking step must end well before the watchdog would fire.
            connect_timeout_ms=_step_deadline_ms(config["WATCHDOG_MS"]),
            io_timeout_ms=_step_deadline_ms(config["WATCHDOG_MS"]),
            resolver=node.resolver,
        )
        client.on_log = lambda c, u, message: log("mqtt: " + message)
    node.client = client
    if updater is not None:
        node.ota = updater.Updater(config, client.publish, log, node._request_reboot, max_message=config["MAX_PACKET"])
    client.will_set(node.status_topic, b"offline", 1, True)
    client.on_connect = node._on_connect
    client.on_disconnect = node._on_disconnect
    client.on_message = node._on_command
    client.on_publish = node._on_publish
    client.start_reconnecting()  # the first connect is a reconnect: retried forever


def _open_store(config, names, log):
    """The board's flash store, or None (no STORE, or the filesystem failed:
    then readings wait in the RAM ring only)."""
    settings = config.get("STORE")
    if not settings:
        return None
    from node.store import FlashStore  # only boards with a STORE pay for its code

    try:
        store = FlashStore(
            settings["path"],
            capacity=settings["capacity"],
            policy=settings["policy"],
            channels=len(names),
            # A reading waiting from before the board's sensor list changed
            # goes out under its own sensor's topic (node.store_layout).
            names=names,
            flush_every=settings["flush_every"],
            flush_ms=settings["flush_s"] * 1000,
            # Unacknowledged at once: the client's window plus QoS 0 readings between them.
            window=2 * config["INFLIGHT"],
        )
    except OSError as e:
        log("store: cannot open %s (%s): readings wait in RAM only" % (settings["path"], e))
        return None
    finally:
        _forget_module("store_layout")  # read at opening only
    if store.recovered or store.torn:
        log("store: %d readings kept across the reset (%d torn)" % (store.recovered, store.torn))
    if store.orphaned:
        log("store: %d readings of sensors no longer on the board dropped" % store.orphaned)
    return store


def _updater_module(config, log):
    """ota.updater where the board's secrets hold OTA_KEY, or None (its code
    and the larger receive buffer cost RAM a board without updates keeps)."""
    if not config.get("OTA"):
        return None
    if config["DEEP_SLEEP_S"]:
        # Awake for seconds at a time, a sleeping node would take an update
        # in pieces across wakes, if the host kept sending that long.
        log("ota: OTA_KEY is set, but updates need an always-on node (DEEP_SLEEP_S is %d)" % config["DEEP_SLEEP_S"])
        return None
    try:
        from ota import updater
    except ImportError as e:  # a board deployed without lib/ota
        log("ota: OTA_KEY is set but lib/ota is missing (%r): updates are off" % (e,))
        return None
    return updater


def _resolver(config):
    """A DNS resolver with deadlines where the board has a DNS server (its
    own DNS setting, or the Wi-Fi's from DHCP); None: getaddrinfo."""
    if config["DNS"] is None and config["WIFI"] is None:
        return None
    from dns import Resolver

    # Without a DNS setting, the server comes from DHCP: step() sets it once
    # the Wi-Fi is up, before the client may connect.
    server, port = config["DNS"] or ("0.0.0.0", 53)
    return Resolver(server, port)


def _check_room(topic, max_packet):
    # The longest reading on the topic must fit MAX_PACKET (and so the
    # transmit buffer, which is never smaller): else the first long value
    # is refused, and a replay of stored readings stops at it for good.
    remaining = 2 + len(topic) + 2 + _PAYLOAD_SIZE  # topic, packet id, payload
    size = 1 + remaining_length_size(remaining) + remaining
    if size > max_packet:
        raise ValueError(
            "board MAX_PACKET (%d) is too small for a reading on %s: it needs %d" % (max_packet, topic.decode(), size)
        )


def _tx_size(config):
    size = config["MAX_PACKET"] if config["MAX_PACKET"] > _TX_MIN else _TX_MIN
    if config["DISCOVERY"] and size < _TX_DISCOVERY:
        size = _TX_DISCOVERY
    return size


def _tls_context(broker):
    if not broker["tls"]:
        return None
    from netcompat import tls_context

    return tls_context(cafile=broker["ca"], certfile=broker["cert"], keyfile=broker["key"])
