"""Plain calls to Tandem's HTTP API as the built-in admin, for the interop scripts that
drive a tool rather than a client library: JSON in and out, any other status than the
expected one ends the run with the answer."""

import base64
import json
import sys
import urllib.error
import urllib.request


def basic(password):
    """`Authorization: Basic` for the admin user."""
    return "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()


def call(base, auth, method, path, body=None, expect=200):
    """Sends `method base+path` with `body` as JSON; the decoded answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", auth)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    if status != expect:
        sys.exit(f"{method} {path} on {base}: {status} {text}")
    return json.loads(text) if text else None
