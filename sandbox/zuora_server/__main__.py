"""Run the fake Zuora server: `python -m sandbox.zuora_server [--port 0] [--url-file F] [--tenants F.json]`.

`--tenants` names a JSON list of tenants (name, client_id, client_secret, workflows, max_tasks,
seed, snake_case); `--url-file` receives the base URL once the server listens (useful with
port 0); `--exit-with-parent` stops the server when the process that started it is gone, so
a demo killed without its cleanup leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path

from sandbox.zuora_server.server import ZuoraFakeServer


def _watch_parent(server: ZuoraFakeServer) -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.zuora_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--url-file", type=Path)
    parser.add_argument("--tenants", type=Path)
    parser.add_argument("--exit-with-parent", action="store_true")
    args = parser.parse_args()
    server = ZuoraFakeServer(args.host, args.port)
    for tenant in json.loads(args.tenants.read_text()) if args.tenants else []:
        server.zuora.add_tenant(**tenant)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    if args.exit_with_parent:
        threading.Thread(target=_watch_parent, args=(server,), daemon=True).start()
    if args.url_file:
        partial = args.url_file.with_suffix(".tmp")
        partial.write_text(server.url)
        partial.replace(args.url_file)
    print(f"fake Zuora listening on {server.url}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()


if __name__ == "__main__":
    main()
