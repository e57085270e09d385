"""`/metrics` matches what clients saw: a client that goes away mid-request is not counted as a server error."""

import socket
import time

import httpx

from pm_serving.app import create_app
from pm_serving.settings import Settings

from .server import running


def _count(url: str, status: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("pm_requests_total{") and f'status_code="{status}"' in line)


def test_a_client_that_disconnects_mid_body_is_not_a_500(served_data_dir):
    with running(create_app(Settings())) as url:
        port = int(url.rsplit(":", 1)[1])
        errors_before, gone_before = _count(url, "500"), _count(url, "499")
        for _ in range(3):  # the headers promise a body; the client sends part of it and hangs up
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 100000\r\n\r\n{\"machine_id\": \"M1\", \"readings\": [")
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while _count(url, "499") < gone_before + 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _count(url, "499") == gone_before + 3
        assert _count(url, "500") == errors_before
