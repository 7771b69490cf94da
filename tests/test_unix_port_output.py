"""What the Unix port prints while the client works: nothing of its own.
It warns on every comparison of bytes with str, and a node publishes
readings on bytes topics and its discovery configs on str ones."""


from harness import micropython

SCRIPT = """
from memory_broker import MemoryBroker
from mqtt.client import MQTTClient

broker = MemoryBroker()
client = MQTTClient("n", "broker.invalid", transport=broker.transport)
client.connect()
for i in range(20):
    client.publish(b"house/kitchen/temperature", b"21.50", i % 2)
    client.publish("homeassistant/sensor/n/temperature/config", b"{}", 0, True)
    client.poll(0)
print("DONE")
"""


def test_publishing_on_bytes_and_str_topics_prints_no_warning(tmp_path):
    script = tmp_path / "publish_both.py"
    script.write_text(SCRIPT)
    result = micropython.run([str(script)], timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "DONE" in result.stdout, output
    assert "Warning" not in output, output
