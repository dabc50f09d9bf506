"""TLS clients for tests: Python's ssl (any SNI, any Host, optional client certificate) and wrappers
around curl and ``openssl s_client``, the clients the issue names."""
from __future__ import annotations

import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cryptography import x509

from .rawhttp import RawConnection, Response, format_request


@dataclass
class TLSResult:
    version: str | None
    cipher: str | None
    peer_certificate: x509.Certificate | None
    alpn: str | None


def context(ca: Path | None, *, cert: tuple[Path, Path] | None = None, minimum: ssl.TLSVersion | None = None,
            maximum: ssl.TLSVersion | None = None, alpn: Sequence[str] = ("http/1.1",)) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        ctx.load_verify_locations(cafile=str(ca))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class TLSConnection(RawConnection):
    """A RawConnection over TLS: ``sni`` goes in the ClientHello (None sends none)."""

    def __init__(self, port: int, sni: str | None, ctx: ssl.SSLContext, timeout: float = 10.0):
        self.host = "127.0.0.1"
        self.port = port
        plain = socket.create_connection((self.host, port), timeout=timeout)
        if sni is None:
            ctx.check_hostname = False
        tls = ctx.wrap_socket(plain, server_hostname=sni)
        self._adopt(tls)
        der = tls.getpeercert(binary_form=True)
        self.tls = TLSResult(version=tls.version(), cipher=(tls.cipher() or (None,))[0],
                             peer_certificate=x509.load_der_x509_certificate(der) if der else None,
                             alpn=tls.selected_alpn_protocol())


def get(port: int, path: str, *, sni: str | None, ca: Path | None, host: str | None = None,
        cert: tuple[Path, Path] | None = None) -> Response:
    """One GET over a fresh TLS connection; ``host`` defaults to the SNI."""
    with TLSConnection(port, sni, context(ca, cert=cert)) as conn:
        conn.send(format_request("GET", path, host=host or sni or "gatehouse.test"))
        return conn.read_response()


def curl(port: int, host: str, path: str, *, ca: Path, cert: tuple[Path, Path] | None = None,
         extra: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """curl over HTTPS with ``host`` resolved to 127.0.0.1; stdout is the body, then the status code."""
    command = ["curl", "-sS", "--http1.1", "--max-time", "10", "--cacert", str(ca),
               "--resolve", f"{host}:{port}:127.0.0.1", "-w", "\n%{http_code}", *extra]
    if cert is not None:
        command += ["--cert", str(cert[0]), "--key", str(cert[1])]
    command.append(f"https://{host}:{port}{path}")
    return subprocess.run(command, capture_output=True, text=True, timeout=20)


def s_client(port: int, *args: str) -> str:
    """``openssl s_client`` output (stdout and stderr) for a handshake with ``args``. What the server sends
    after the handshake is printed too: with ALPN h2 that is the binary HTTP/2 preface, so undecodable
    bytes are replaced rather than failing the read."""
    result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                            input="", capture_output=True, text=True, errors="replace", timeout=20)
    return result.stdout + result.stderr
