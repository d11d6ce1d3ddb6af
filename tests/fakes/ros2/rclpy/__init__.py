"""FAKE rclpy: the subset runtime/ros2.py uses, with rclpy's names and signatures (ros2/rclpy, rclpy/__init__.py
and rclpy/node.py: init(*, args=None, context=None), ok(*, context=None), shutdown(*, context=None),
create_node(node_name, *, context=None, ...), Node.create_publisher(msg_type, topic, qos_profile),
Node.destroy_node(), Publisher.publish(msg)). Every published message is kept in PUBLISHED, as
(topic, message), for tests to read; create_publisher refuses a qos_profile that is not a depth or a profile,
and publish refuses a message of another type, as rclpy does."""

PUBLISHED = []
NODES = []
_state = {"ok": False}


def init(*, args=None, context=None):
    if _state["ok"]:
        raise RuntimeError("Context.init() must only be called once")
    _state["ok"] = True


def ok(*, context=None):
    return _state["ok"]


def shutdown(*, context=None):
    if not _state["ok"]:
        raise RuntimeError("Context must be initialized before it can be shutdown")
    _state["ok"] = False


class Publisher:
    def __init__(self, msg_type, topic):
        self.msg_type, self.topic = msg_type, topic

    def publish(self, msg):
        if not isinstance(msg, self.msg_type):
            raise TypeError("Expected %s, got %s" % (self.msg_type, type(msg)))
        PUBLISHED.append((self.topic, msg))


class Node:
    def __init__(self, node_name):
        if not _state["ok"]:
            raise RuntimeError("rclpy.init() has not been called")
        self.name, self.destroyed = node_name, False
        NODES.append(self)

    def create_publisher(self, msg_type, topic, qos_profile, **kwargs):
        if not isinstance(qos_profile, int):
            raise TypeError("qos_profile: a depth or a QoSProfile")
        return Publisher(msg_type, topic)

    def destroy_node(self):
        self.destroyed = True


def create_node(node_name, *, context=None, **kwargs):
    return Node(node_name)
