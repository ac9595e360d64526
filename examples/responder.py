"""An HTTP server that answers every GET with its own name, for the examples.

    python3 responder.py NAME PORT_FILE [ADDRESS [PORT]]

Binds ADDRESS:PORT (127.0.0.1 and a free port by default) and writes the port
it got into PORT_FILE once it listens.
"""
import http.server
import sys

name = sys.argv[1].encode()
port_file = sys.argv[2]
address = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
port = int(sys.argv[4]) if len(sys.argv) > 4 else 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer((address, port), Handler)
with open(port_file, "w") as out:
    out.write(str(server.server_address[1]))
server.serve_forever()
