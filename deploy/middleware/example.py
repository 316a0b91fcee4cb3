#!/usr/bin/env python3
"""Example middleware for `tapline replay --middleware deploy/middleware/example.py`.

tapline writes one JSON line per exchange to stdin and reads one reply line
per exchange from stdout (see replayer/middleware.go for the protocol):

  in:  {"id": "...", "session_key": "...",
        "request": {"method": "GET", "target": "/v1/items?x=1", "host": "api.example.com",
                    "headers": [["Accept", "*/*"]], "body": "<base64, may be absent>"}}
  out: {"id": "...", "request": {...same shape...}}   send this instead
       {"id": "...", "drop": true}                     do not replay it

This one drops requests under /admin, moves /v1/ to /v2/, and tags every
request with an X-Middleware header. Anything on stderr shows up in
tapline's log. Flush after every reply: tapline waits for it.
"""
import json
import sys

for line in sys.stdin:
    msg = json.loads(line)
    req = msg["request"]
    if req["target"].startswith("/admin"):
        reply = {"id": msg["id"], "drop": True}
    else:
        if req["target"].startswith("/v1/"):
            req["target"] = "/v2/" + req["target"][len("/v1/"):]
        req["headers"] = (req.get("headers") or []) + [["X-Middleware", "example"]]
        reply = {"id": msg["id"], "request": req}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
