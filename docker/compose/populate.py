"""Create docker-compose.yml's paths on its fault proxy (Toxiproxy or drdrill/proxy).

Runs once per ``up`` (service proxy-init): waits for the proxy's API, then creates or
replaces every proxy of proxies.json with ``POST /populate``, which both servers speak.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from pytest_drdrill.proxy import ProxyClient

api = sys.argv[1] if len(sys.argv) > 1 else "http://toxiproxy:8474"
client = ProxyClient(api, timeout=5.0)
deadline = time.monotonic() + 120
while True:
    try:
        print(f"fault proxy {client.version()} at {api}", flush=True)
        break
    except Exception as exc:  # not up yet: any error means try again
        if time.monotonic() > deadline:
            sys.exit(f"no fault proxy answered at {api} within 120 s: {exc}")
        time.sleep(0.5)
proxies = json.loads(Path("/drdrill/proxies.json").read_text())
for proxy in client.populate(proxies):
    print(f"{proxy.name}: {proxy.listen} -> {proxy.upstream}", flush=True)
