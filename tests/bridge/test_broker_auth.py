"""The private broker's password/ACL variant, and a bridge using its own credentials."""

import paho.mqtt.client as mqtt

from devices import events
from tests.bridge.conftest import wait_until
from tests.support.broker import start_broker

ACL = """user observer
topic read fablab/v1/#

pattern readwrite fablab/v1/bridge/%u/#
user bridge-a
topic readwrite fablab/v1/machine/prusa-a/#
"""


def connect(broker, user, password):
    result = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.username_pw_set(user, password)
    client.on_connect = lambda c, u, f, rc, p: result.setdefault("rc", rc)
    client.connect(broker.host, broker.port)
    client.loop_start()
    wait_until(lambda: "rc" in result, what="CONNACK")
    return client, result["rc"]


def test_passwords_and_acl(tmp_path, make_bridge, marlin_sim):
    broker = start_broker(tmp_path / "auth-broker", users={"bridge-a": "s3cret", "observer": "look"}, acl=ACL)
    try:
        client, rc = connect(broker, "bridge-a", "wrong")
        assert rc.is_failure
        client.loop_stop()

        observer, rc = connect(broker, "observer", "look")
        assert not rc.is_failure
        got = []
        observer.on_message = lambda c, u, m: got.append(m.topic)
        observer.subscribe("fablab/v1/#", qos=1)

        sim = marlin_sim()
        make_bridge([{"id": "prusa-a", "driver": "marlin", "port": sim.path}], b=broker, bridge_id="bridge-a",
                    username="bridge-a", password="s3cret")
        wait_until(lambda: "fablab/v1/machine/prusa-a/status" in got, what="status from the bridge")
        assert "fablab/v1/bridge/bridge-a/status" in got

        # the bridge's credentials do not allow writing below another machine
        intruder, _ = connect(broker, "bridge-a", "s3cret")
        cmd = events.Command(src="bridge-a", machine="prusa-b", action="unlock")
        intruder.publish(cmd.topic(), events.encode(cmd), qos=1).wait_for_publish(2)
        own = events.Command(src="bridge-a", machine="prusa-a", action="lock")
        intruder.publish(own.topic(), events.encode(own), qos=1).wait_for_publish(2)
        wait_until(lambda: "fablab/v1/machine/prusa-a/cmd" in got, what="allowed publish")
        assert "fablab/v1/machine/prusa-b/cmd" not in got
        for c in (observer, intruder):
            c.disconnect()
            c.loop_stop()
    finally:
        broker.close()
