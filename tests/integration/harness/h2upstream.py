"""A scripted HTTP/2 (h2c, prior knowledge) origin on ``h2`` with its own checks off, so that tests can
answer what a broken or hostile upstream answers. ``respond(request_fields)`` returns the response
fields (pseudo-headers included); the body is empty and the stream ends with the headers (an
informational response leaves it open). ``respond`` returning None refuses the stream (RST_STREAM
REFUSED_STREAM), as a server shedding load does."""
from __future__ import annotations

import socket
import threading
from typing import Callable

import h2.config
import h2.connection
import h2.errors
import h2.events

Fields = list[tuple[str, str]]


class ScriptedH2Upstream:
    def __init__(self, respond: Callable[[Fields], Fields | None]):
        self.respond = respond
        self.requests: list[Fields] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding="latin-1",
                                           validate_outbound_headers=False, normalize_outbound_headers=False,
                                           validate_inbound_headers=False)
        h2conn = h2.connection.H2Connection(config)
        h2conn.initiate_connection()
        conn.settimeout(0.5)
        try:
            conn.sendall(h2conn.data_to_send())
            while not self._stopping.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return
                for event in h2conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        fields = [(str(k), str(v)) for k, v in event.headers]
                        self.requests.append(fields)
                        response = self.respond(fields)
                        if response is None:
                            h2conn.reset_stream(event.stream_id, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
                            continue
                        informational = dict(response).get(":status", "").startswith("1")
                        h2conn.send_headers(event.stream_id, response, end_stream=not informational)
                    elif isinstance(event, h2.events.DataReceived):
                        h2conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                conn.sendall(h2conn.data_to_send())
        except OSError:
            return
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=2)
