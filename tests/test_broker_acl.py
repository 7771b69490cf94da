"""Who may command a node: the private broker with a password file and the
house ACL (tools/mosquitto.py: house_acl, controller_acl), as the README
tells a user to set up. A node, connecting as the user named after it,
publishes its readings and reads only its own command topics; a controller
user may command it; any other user's commands never reach it."""

import threading

import paho.mqtt.client as mqtt
import pytest

from test_node_e2e import BOARDS, NodeProcess, wait_until
from tools.mosquitto import controller_acl, house_acl

USERS = {"unix-node": "node-secret", "controller": "controller-secret", "guest": "guest-secret"}
SET_INTERVAL = "house/kitchen/unix-node/set/interval"


@pytest.fixture
def acl_broker(make_broker):
    return make_broker(users=USERS, acl=house_acl() + controller_acl("controller"))


def paho(broker, user=None, password=None, client_id=""):
    """A connected paho client, or the CONNACK reason it was refused with."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    if user is not None:
        client.username_pw_set(user, password)
    answered = threading.Event()
    result = {}

    def on_connect(c, userdata, flags, reason_code, properties):
        result["reason"] = reason_code
        answered.set()

    client.on_connect = on_connect
    client.connect(*broker.address, keepalive=10)
    client.loop_start()
    assert answered.wait(5), "no CONNACK"
    return client, result["reason"]


def received_on(client, topics):
    """What client receives on any of topics, as (topic, payload)."""
    messages = []
    subscribed = threading.Event()
    client.on_message = lambda c, userdata, message: messages.append((message.topic, message.payload))
    client.on_subscribe = lambda c, userdata, mid, codes, properties: subscribed.set()
    client.subscribe([(topic, 1) for topic in topics])
    assert subscribed.wait(5), "no SUBACK"
    return messages


def close(*clients):
    for client in clients:
        client.loop_stop()
        client.disconnect()


def test_anonymous_and_wrong_password_are_refused(acl_broker):
    anonymous, reason = paho(acl_broker)
    assert reason == "Not authorized", reason
    impostor, reason = paho(acl_broker, "unix-node", "guess")
    assert reason in ("Not authorized", "Bad user name or password"), reason
    close(anonymous, impostor)


def test_a_node_reads_its_own_commands_and_only_the_controllers(acl_broker):
    node, reason = paho(acl_broker, "unix-node", USERS["unix-node"])
    assert reason == "Success", reason
    # Both granted by the SUBACK (3.1.1 has no way to say otherwise); the ACL filters what arrives.
    commands = received_on(node, ["house/kitchen/unix-node/set/#", "house/kitchen/other-node/set/#"])
    guest, _ = paho(acl_broker, "guest", USERS["guest"])
    controller, _ = paho(acl_broker, "controller", USERS["controller"])
    guest.publish(SET_INTERVAL, b"1", qos=1).wait_for_publish(5)
    controller.publish(SET_INTERVAL, b"30", qos=1).wait_for_publish(5)
    controller.publish("house/kitchen/other-node/set/interval", b"30", qos=1).wait_for_publish(5)
    assert wait_until(lambda: commands, 5)
    assert wait_until(lambda: len(commands) > 1, 1) is False  # the guest's never arrives
    assert commands == [(SET_INTERVAL, b"30")]  # not the guest's, nor another node's commands
    close(node, guest, controller)


def test_a_node_may_announce_every_component_under_its_own_name_only(acl_broker):
    node, _ = paho(acl_broker, "unix-node", USERS["unix-node"])
    controller, _ = paho(acl_broker, "controller", USERS["controller"])
    configs = received_on(controller, ["homeassistant/#"])
    for topic in ("homeassistant/button/unix-node/restart/config", "homeassistant/button/other-node/restart/config"):
        node.publish(topic, b"{}", qos=1).wait_for_publish(5)
    assert wait_until(lambda: configs, 5)
    assert wait_until(lambda: len(configs) > 1, 1) is False
    assert configs == [("homeassistant/button/unix-node/restart/config", b"{}")]
    close(node, controller)


def test_node_firmware_publishes_through_the_acl_and_obeys_only_the_controller(acl_broker, tmp_path):
    with open("%s/unix.py" % BOARDS) as f:
        board = f.read()
    (tmp_path / "acl_board.py").write_text(
        board + '\nBROKER = dict(BROKER, username="unix-node")\nPAYLOAD = "plain"\n'
    )
    (tmp_path / "secrets.py").write_text('MQTT_PASSWORD = "%s"\n' % USERS["unix-node"])
    controller, _ = paho(acl_broker, "controller", USERS["controller"])
    readings = received_on(controller, ["house/kitchen/temperature"])
    node = NodeProcess(acl_broker, board="acl_board", extra_path=str(tmp_path))
    try:
        assert wait_until(lambda: readings, 15), node.output()
        guest, _ = paho(acl_broker, "guest", USERS["guest"])
        guest.publish(SET_INTERVAL, b"7", qos=1).wait_for_publish(5)
        controller.publish(SET_INTERVAL, b"9", qos=1).wait_for_publish(5)
        assert wait_until(lambda: node.first("command: interval now 9 s") is not None, 10), node.output()
        assert node.first("interval now 7 s") is None, node.output()
        close(guest, controller)
    finally:
        node.kill()
