"""Test harness for the Gatehouse integration suite.

- ``config``   builds Bootstrap/Gateway/ServiceEntry/VirtualService/... documents and writes YAML
- ``upstream`` a threaded HTTP/1.1 origin server (echo, bulk bytes, uploads, delays, resets)
- ``gateway``  starts the ``gatehouse`` binary, waits for its port, reads its access log
- ``rawhttp``  a small HTTP/1.1 client over a raw socket (pipelining, malformed input, big bodies)
- ``pattern``  the deterministic byte stream used for large bodies
"""
