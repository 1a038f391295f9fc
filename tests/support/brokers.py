"""What the broker connector tests share: reachability of the machine's brokers, unique names.

Each broker is the real service on 127.0.0.1 (NATS JetStream 4222, RabbitMQ 5672, Redis 6379, Mosquitto
1883). A test whose broker is down is skipped with the reason, unless ``CI=true``: then it fails.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

NATS_URL = "nats://127.0.0.1:4222"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_URL = "redis://127.0.0.1:6379/0"
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883

PORTS = {"nats": 4222, "rabbitmq": 5672, "redis": 6379, "mqtt": 1883, "postgres": 5432}


def require_broker(kind: str) -> None:
    """Skip (outside CI) or fail (CI=true) when the broker ``kind`` is unreachable on 127.0.0.1."""
    port = PORTS[kind]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
    except OSError:
        reason = f"{kind} is not reachable at 127.0.0.1:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI=true requires it")
    pytest.skip(reason)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"
