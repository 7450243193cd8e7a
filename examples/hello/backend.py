"""The HTTP backend the hello example's `/dev/users` (HTTP) and `/dev/api/...` (HTTP_PROXY) routes
forward to: the `backend` stage variable, 127.0.0.1:9000. Standard library only.

    python examples/hello/backend.py [port]      # default 9000; 0 picks a free port

GET /users answers a JSON list of users; any other request is echoed back as JSON (method, path,
query, headers, body), so you can see what the gateway forwarded.
"""

import contextlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

USERS = [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]


class Backend(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if self.command == "GET" and url.path == "/users":
            payload: object = USERS
        else:
            payload = {
                "method": self.command,
                "path": url.path,
                "query": url.query,
                "headers": dict(self.headers.items()),
                "body": body,
            }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    with ThreadingHTTPServer(("127.0.0.1", port), Backend) as server:
        print(f"backend listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C
            server.serve_forever()
