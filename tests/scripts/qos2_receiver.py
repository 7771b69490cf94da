# A QoS 2 subscriber on a persistent session, run unchanged on CPython
# (PYTHONPATH=lib) and on the MicroPython Unix port (MICROPYPATH=lib):
#
#   qos2_receiver.py HOST PORT CLIENT_ID TOPIC COUNT
#
# COUNT 0: subscribe (QoS 2) and leave, so that the broker queues what is
# published meanwhile. Else: connect to the kept session and take COUNT
# messages (payloads "0" .. "COUNT-1"), then print one line:
#
#   RESULT {"received": ..., "in_order": ..., "duplicates": ..., "disconnects": ..., "errors": [...]}
import json
import sys

from compat import ticks_add, ticks_diff, ticks_ms
from mqtt.client import MQTTClient


def main(host, port, client_id, topic, count):
    client = MQTTClient(client_id, host, port, keepalive=10, clean_session=False, rx_size=512)
    payloads = []
    errors = []
    client.on_message = lambda c, userdata, message: payloads.append(message.payload)
    client.on_disconnect = lambda c, userdata, error: errors.append(repr(error))
    client.connect()
    if count == 0:
        client.subscribe(topic, 2)
        client.wait_for_acks(2000)
        deadline = ticks_add(ticks_ms(), 2000)
        while ticks_diff(deadline, ticks_ms()) > 0 and client.connected:
            client.poll(50)  # the SUBACK
            if client.session.out_count == 0:
                break
        client.disconnect()
        print("SUBSCRIBED")
        return
    deadline = ticks_add(ticks_ms(), 20000)
    while len(payloads) < count and ticks_diff(deadline, ticks_ms()) > 0:
        client.poll(50)
    client.poll(200)  # the PUBCOMPs of the last ones
    expected = [b"%d" % i for i in range(count)]
    print(
        "RESULT "
        + json.dumps(
            {
                "received": len(payloads),
                "in_order": payloads == expected,
                "duplicates": len(payloads) - len(set(payloads)),
                "disconnects": client.disconnects,
                "errors": errors,
            }
        )
    )
    client.disconnect()


main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
