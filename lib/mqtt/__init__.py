"""MQTT 3.1.1 for the sensor node: codec (packet, topic), session, client."""
