"""Pointed at a server that is not an MQTT broker (here an HTTP server on
127.0.0.1), the client says so, instead of naming whatever packet the
server's first bytes happen to look like."""

import http.server
import threading

import pytest

from mqtt.client import MQTTClient
from mqtt.packet import ProtocolError


class Answers400(http.server.BaseHTTPRequestHandler):
    def handle_one_request(self):
        # The CONNECT is no request line HTTP knows: answer 400 at once.
        self.rfile.read(2)
        self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answers400)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_an_http_server_is_named_not_an_mqtt_broker(http_server):
    client = MQTTClient("kitchen-node", "127.0.0.1", http_server, connect_timeout_ms=3000)
    with pytest.raises(ProtocolError, match=r"not an MQTT broker: expected CONNACK, got b'HTTP/1.1 400 Bad'"):
        client.connect()
    assert not client.connected
