#!/usr/bin/env python3
"""A small backend for Switchboard, standard library only.

It does the two things a backend does with Switchboard's native protocol:

* it is the app's auth webhook: Switchboard calls GET /auth before it accepts a WebSocket,
  forwarding the browser's Cookie header; this backend looks the session cookie up and answers
  {"id": user, "channels": [...]} (200) or 401;
* it broadcasts over Switchboard's HTTP API with the app's API token (POST /broadcast).

Routes:
  GET  /                 the example web page (../web/index.html)
  GET  /login?user=NAME  a demo login: sets the `session` cookie
  GET  /auth             the auth webhook (set SWITCHBOARD_APP_AUTH_WEBHOOK_URL to it)
  POST /messages         form or JSON {channel, message}: broadcasts it through Switchboard

Run:
  SWITCHBOARD_API_TOKEN=... python3 backend.py              # serve on PORT (default 8000)
  SWITCHBOARD_API_TOKEN=... python3 backend.py broadcast CHANNEL MESSAGE

Environment: SWITCHBOARD_URL (default http://127.0.0.1:6001), SWITCHBOARD_API_TOKEN,
HOST (default 127.0.0.1), PORT (default 8000).
"""

import json
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SWITCHBOARD_URL = os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:6001").rstrip("/")
API_TOKEN = os.environ.get("SWITCHBOARD_API_TOKEN", "")
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "8000"))
WEB_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web", "index.html")

# session id -> user id. A real application keeps these in its session store.
SESSIONS = {}


def broadcast(channel, message, event=None):
    """POST /broadcast with the API token; returns (HTTP status, Switchboard's JSON answer)."""
    body = {"channel": channel, "data": message}
    if event:
        body["event"] = event
    request = urllib.request.Request(
        SWITCHBOARD_URL + "/broadcast",
        data=json.dumps(body).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + API_TOKEN},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the output to what the example prints
        pass

    def send_json(self, status, body, headers=None):
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def session_user(self):
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        morsel = cookie.get("session")
        return SESSIONS.get(morsel.value) if morsel else None

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/":
            with open(WEB_PAGE, "rb") as page:
                html = page.read()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)
        elif url.path == "/login":
            user = (query.get("user") or [""])[0]
            if not user:
                return self.send_json(400, {"error": "give ?user="})
            session = secrets.token_urlsafe(24)
            SESSIONS[session] = user
            # Cookies are not port-specific: the browser sends this one to Switchboard on the same host too.
            self.send_json(200, {"user": user}, {"Set-Cookie": "session=%s; Path=/; HttpOnly; SameSite=Lax" % session})
        elif url.path == "/auth":
            # Switchboard's auth webhook: the browser's cookies are forwarded as they are.
            user = self.session_user()
            if user is None:
                return self.send_json(401, {"error": "not logged in"})
            self.send_json(200, {"id": user, "channels": ["private-user-" + user]})
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/messages":
            return self.send_json(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8")
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            fields = json.loads(raw or "{}")
        else:
            fields = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
        channel, message = fields.get("channel"), fields.get("message")
        if not channel or message is None:
            return self.send_json(400, {"error": "give channel and message"})
        status, answer = broadcast(channel, message)
        self.send_json(200 if status == 200 else 502, {"switchboard": answer})


def main(argv):
    if not API_TOKEN:
        print("set SWITCHBOARD_API_TOKEN (the app's apiToken)", file=sys.stderr)
        return 2
    if len(argv) >= 1 and argv[0] == "broadcast":
        if len(argv) != 3:
            print("usage: backend.py broadcast CHANNEL MESSAGE", file=sys.stderr)
            return 2
        status, answer = broadcast(argv[1], argv[2])
        print(json.dumps(answer))
        return 0 if status == 200 else 1
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    print("listening on http://%s:%d (Switchboard at %s)" % (HOST, server.server_address[1], SWITCHBOARD_URL), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
