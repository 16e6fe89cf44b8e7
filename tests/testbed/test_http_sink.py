"""The HTTP sink records what a receiver would have received, and nothing more."""

from __future__ import annotations

import socket
import urllib.request

from tests.infra.http_sink import HttpSink


def test_a_sender_gone_mid_body_is_not_recorded_and_a_whole_one_is() -> None:
    sink = HttpSink()
    try:
        with socket.create_connection((sink.host, sink.port)) as sender:
            sender.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ba")
            sender.shutdown(socket.SHUT_WR)  # like a sender SIGKILLed mid-request
            assert sender.recv(1024) == b""  # closed without an answer
        request = urllib.request.Request(sink.url, data=b'{"batch": [{"messageId": "m1"}]}',
                                         method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
        assert [event["messageId"] for event in sink.events()] == ["m1"]
        assert len(sink.received) == 1
    finally:
        sink.stop()
