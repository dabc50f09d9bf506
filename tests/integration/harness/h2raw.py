"""An HTTP/2 client on ``h2`` with its own checks turned off, so that tests can send what a broken or
hostile client sends and look at every event the gateway answers with."""
from __future__ import annotations

import socket

import h2.config
import h2.connection
import h2.events
import h2.exceptions


class RawH2:
    """An h2 client that does not validate what it sends."""

    def __init__(self, port: int, *, settings: dict | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                           validate_outbound_headers=False, normalize_outbound_headers=False,
                                           validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.events: list = []
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def headers(self, fields, *, end: bool = True, stream: int | None = None) -> int:
        stream = stream or self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, fields, end_stream=end)
        self.flush()
        return stream

    def pump(self, until, timeout: float = 5.0):
        """Reads until ``until(events)`` is true or the connection closes; returns the events."""
        self.sock.settimeout(timeout)
        while not until(self.events):
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not data:
                self.events.append("closed")
                break
            try:
                for event in self.conn.receive_data(data):
                    self.events.append(event)
                    if isinstance(event, h2.events.DataReceived):
                        self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            except h2.exceptions.ProtocolError as error:
                self.events.append(error)
                break
            self.flush()
        return self.events

    def reset_of(self, stream: int):
        return next((e for e in self.events if isinstance(e, h2.events.StreamReset) and e.stream_id == stream), None)

    def response_of(self, stream: int):
        return next((e for e in self.events if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream), None)

    def goaway(self):
        return next((e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)), None)

    def ended(self, stream: int) -> bool:
        return any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream for e in self.events)

    def close(self) -> None:
        self.sock.close()
