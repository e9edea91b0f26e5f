"""The push channel's topics and broker URLs, and the key rotation statement."""

from __future__ import annotations

import pytest

from farpoint.core import keys
from farpoint.core.key_rotation import rotation_statement, sign_rotation, verify_rotation
from farpoint.core.push import (
    ALL_TOPIC,
    BrokerUrlError,
    all_topic,
    parse_broker_url,
    sync_topic,
)


def test_broker_urls_parse_with_defaults_and_credentials() -> None:
    b = parse_broker_url("mqtt://127.0.0.1")
    assert (b.host, b.port, b.tls, b.username) == ("127.0.0.1", 1883, False, None)
    b = parse_broker_url("mqtts://bob:p%40ss@broker.example:9883")
    assert (b.host, b.port, b.tls, b.username, b.password) == (
        "broker.example", 9883, True, "bob", "p@ss",
    )  # fmt: skip
    assert str(b) == "mqtts://bob@broker.example:9883/farpoint"  # never the password
    assert parse_broker_url("mqtts://h").port == 8883
    assert parse_broker_url("mqtt://h:1883/site-a/plant.2").prefix == "site-a/plant.2"
    assert parse_broker_url("mqtt://h/").prefix == "farpoint"


@pytest.mark.parametrize(
    "url",
    [
        "http://h:1883",
        "mqtt://",
        "mqtt://h:notaport",
        "mqtt://h/a+b",
        "mqtt://h/a#b",
        "mqtt://h/a//b",
        "mqtt://h/1/2/3/4/5",
        "mqtt://h/t?x=1",
        "h:1883",
    ],
)
def test_bad_broker_urls_say_what_is_wrong(url: str) -> None:
    with pytest.raises(BrokerUrlError):
        parse_broker_url(url)


def test_topics() -> None:
    assert sync_topic("0b5c") == "farpoint/devices/0b5c/sync"
    assert ALL_TOPIC == all_topic() == "farpoint/devices/all/sync"
    assert sync_topic("0b5c", "site-a") == "site-a/devices/0b5c/sync"
    assert all_topic("site-a") == "site-a/devices/all/sync"
    for bad in ("", "a/b", "a+", "#"):
        with pytest.raises(ValueError):
            sync_topic(bad)


def test_the_rotation_proof_binds_the_device_and_both_keys() -> None:
    new = keys.generate_private_key()
    old_id = "sha256:" + "1" * 64
    proof = sign_rotation(new, "device-a", old_id)
    assert verify_rotation(new.public_key(), "device-a", old_id, proof)
    assert not verify_rotation(new.public_key(), "device-b", old_id, proof)
    assert not verify_rotation(new.public_key(), "device-a", "sha256:" + "2" * 64, proof)
    other = keys.generate_private_key()
    assert not verify_rotation(other.public_key(), "device-a", old_id, proof)
    assert rotation_statement("d", "o", "n") == b"farpoint-device-key-rotation-v1\nd\no\nn"
