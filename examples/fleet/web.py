"""The demo fleet's web server: answers every GET with a greeting and a
counter, and logs each request on stdout. Usage: web.py PORT"""

import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    served = 0

    def do_GET(self) -> None:
        Handler.served += 1
        body = f"hello #{Handler.served}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"served {self.path} -> #{Handler.served}", flush=True)


server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print(f"listening on {sys.argv[1]}", flush=True)
server.serve_forever()
