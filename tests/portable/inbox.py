# What a test client receives: every message and every SUBACK's granted
# QoS, in arrival order. Shared by the client and the node tests.


class Inbox:
    def __init__(self, client):
        self.messages = []
        self.granted = []
        client.on_message = self.on_message
        client.on_subscribe = self.on_subscribe

    def on_message(self, client, userdata, message):
        self.messages.append((message.topic, message.payload, message.qos, message.retain))

    def on_subscribe(self, client, userdata, packet_id, granted):
        self.granted.append(granted)

    def payloads(self, topic):
        return [m[1] for m in self.messages if m[0] == topic]
