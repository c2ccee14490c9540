#!/usr/bin/env python3
"""Interoperability check of Grafana Live with the real Centrifuge SDKs: `centrifuge-python`
(PyPI) and the `centrifuge` JavaScript SDK (npm, driven through
scripts/interop/node/live_js.mjs) against two Tandem instances, A and B, that share one HA
engine (Redis or PostgreSQL).

Each SDK connects through a TCP proxy of this script's own, with a session cookie from
`POST /login` on A, as a browser behind a load balancer would:
1. Python on A subscribes to `1/grafana/dashboard/uid/<uid>`; the dashboard is saved
   through B's HTTP API and the push `{"uid","action":"saved","rv"}` reaches it. JavaScript
   on B likewise sees a save made through A.
2. Both subscribe to one broadcast channel; what one SDK publishes the other receives, with
   consecutive offsets.
3. Python's proxy cuts its connection and refuses new ones while JavaScript publishes three
   messages; then it lets Python through to B instead. The SDK reconnects by itself and
   resubscribes from its last position: the server answers `recovered: true` and the three
   messages arrive in order, once. Then the same for JavaScript, moved from B to A.

Prints one line per check and `N passed, 0 failed` at the end; stops at the first failure,
prints it with `N passed, 1 failed` and exits 1.

Usage: live_sdks.py URL_A URL_B ADMIN_PASSWORD ENGINE
(run by scripts/interop/run.sh, which starts the instances, once per engine).
"""

import asyncio
import base64
import json
import os
import secrets
import sys
import urllib.request
from urllib.parse import urlsplit

from centrifuge import Client, ClientEventHandler, SubscriptionEventHandler
from checks import check, done

WAIT = 15.0
NODE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node", "live_js.mjs")


async def acheck(description, fn):
    """`checks.check` for a coroutine: the same line, tally and exit on failure."""
    try:
        detail = await fn()
    except Exception as exc:  # noqa: BLE001 - reported by check, which exits
        failure = exc

        def fail():
            raise failure

        check(description, fail)
    return check(description, lambda: detail)


def api(url, method, path, password, body=None):
    """One HTTP request with the admin's basic credentials; the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    token = base64.b64encode(f"admin:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def session_cookie(url, password):
    """Logs in on `url` as a browser does; the `grafana_session=…` cookie."""
    body = json.dumps({"user": "admin", "password": password}).encode()
    request = urllib.request.Request(url + "/login", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            pair = header.split(";", 1)[0]
            if pair.startswith("grafana_session="):
                return pair
    raise AssertionError("POST /login set no grafana_session cookie")


class Proxy:
    """A TCP proxy to one instance that can cut its connections, refuse new ones, and be
    pointed at another instance: the load balancer in front of the cluster."""

    def __init__(self, target):
        self.target = target
        self.refusing = False
        self.connections = set()
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def ws_url(self):
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/api/live/ws"

    def cut_and_refuse(self):
        self.refusing = True
        for writer in list(self.connections):
            writer.transport.abort()

    def let_through_to(self, target):
        self.target = target
        self.refusing = False

    async def _serve(self, reader, writer):
        if self.refusing:
            writer.transport.abort()
            return
        host, port = self.target
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.transport.abort()
            return
        self.connections.update((writer, up_writer))

        async def pipe(src, dst):
            try:
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.connections.difference_update((writer, up_writer))

    async def close(self):
        self.cut_and_refuse()
        self.server.close()
        await self.server.wait_closed()


class Events:
    """What an SDK reported, in order, for the checks to wait on."""

    def __init__(self):
        self.queue = asyncio.Queue()

    def put(self, event):
        self.queue.put_nowait(event)

    async def expect(self, what, predicate, timeout=WAIT):
        """The first event matching `predicate`, skipping others; fails after `timeout`."""
        seen = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = await self.queue.get()
                    if predicate(event):
                        return event
                    seen.append(event)
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout}s; saw {seen!r}") from None

    async def publications(self, channel, count, timeout=WAIT):
        """The next `count` publications on `channel`."""
        return [
            await self.expect(f"publication {i + 1} of {count} on {channel}",
                              lambda e: e["ev"] == "publication" and e["channel"] == channel, timeout)
            for i in range(count)
        ]  # fmt: skip

    def drain_publications(self, channel):
        """Publications on `channel` already reported (there should be none)."""
        extra = []
        while not self.queue.empty():
            event = self.queue.get_nowait()
            if event["ev"] == "publication" and event["channel"] == channel:
                extra.append(event)
        return extra


class PyClientEvents(ClientEventHandler):
    def __init__(self, events):
        self.events = events

    async def on_connected(self, ctx):
        self.events.put({"ev": "connected", "client": ctx.client})

    async def on_connecting(self, ctx):
        self.events.put({"ev": "connecting", "code": ctx.code, "reason": ctx.reason})

    async def on_disconnected(self, ctx):
        self.events.put({"ev": "disconnected", "code": ctx.code, "reason": ctx.reason})


class PySubEvents(SubscriptionEventHandler):
    def __init__(self, events, channel):
        self.events = events
        self.channel = channel

    async def on_subscribed(self, ctx):
        self.events.put({
            "ev": "subscribed", "channel": self.channel, "recovered": ctx.recovered,
            "wasRecovering": ctx.was_recovering, "recoverable": ctx.recoverable,
        })  # fmt: skip

    async def on_publication(self, ctx):
        self.events.put({"ev": "publication", "channel": self.channel, "data": ctx.pub.data,
                         "offset": ctx.pub.offset})  # fmt: skip

    async def on_unsubscribed(self, ctx):
        self.events.put({"ev": "unsubscribed", "channel": self.channel, "code": ctx.code})


class PySdk:
    """centrifuge-python, reporting into `events`."""

    def __init__(self, url, cookie):
        self.events = Events()
        self.client = Client(url, events=PyClientEvents(self.events), headers={"Cookie": cookie},
                             min_reconnect_delay=0.1, max_reconnect_delay=0.5, timeout=5.0)  # fmt: skip

    async def connect(self):
        await self.client.connect()

    async def subscribe(self, channel):
        sub = self.client.new_subscription(channel, events=PySubEvents(self.events, channel))
        await sub.subscribe()

    async def publish(self, channel, data):
        await self.client.publish(channel, data)

    async def close(self):
        await self.client.disconnect()


class JsSdk:
    """The centrifuge JavaScript SDK in a Node.js process, reporting into `events`."""

    def __init__(self):
        self.events = Events()
        self.replies = {}
        self.next_id = 0
        self.process = None
        self.reader = None
        self.stderr = b""

    async def start(self):
        self.process = await asyncio.create_subprocess_exec(
            "node", NODE_SCRIPT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)  # fmt: skip
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self):
        while line := await self.process.stdout.readline():
            event = json.loads(line)
            if event["ev"] in ("done", "failed") and event.get("id") in self.replies:
                self.replies.pop(event["id"]).set_result(event)
            else:
                self.events.put(event)
        self.stderr = await self.process.stderr.read()
        for reply in self.replies.values():
            reply.set_result({"ev": "failed", "error": f"node exited: {self.stderr.decode()}"})

    async def call(self, op, **params):
        self.next_id += 1
        reply = asyncio.get_running_loop().create_future()
        self.replies[self.next_id] = reply
        self.process.stdin.write((json.dumps({"id": self.next_id, "op": op, **params}) + "\n").encode())
        await self.process.stdin.drain()
        async with asyncio.timeout(WAIT):
            event = await reply
        if event["ev"] == "failed":
            raise AssertionError(f"the JavaScript SDK failed to {op}: {event['error']}")
        return event

    async def connect(self, url, cookie):
        await self.call("connect", url=url, cookie=cookie)

    async def subscribe(self, channel):
        await self.call("subscribe", channel=channel)

    async def publish(self, channel, data):
        await self.call("publish", channel=channel, data=data)

    async def close(self):
        if self.process.returncode is None:
            self.process.stdin.close()
            try:
                async with asyncio.timeout(5):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
        self.reader.cancel()


def address(url):
    parts = urlsplit(url)
    return parts.hostname, parts.port


async def run(url_a, url_b, password, engine):
    suffix = secrets.token_hex(4)
    uid = f"live-{engine}-{suffix}"
    dashboard_channel = f"1/grafana/dashboard/uid/{uid}"
    broadcast = f"1/grafana/broadcast/interop-{engine}-{suffix}"
    a, b = address(url_a), address(url_b)

    def health_ok():
        for url in (url_a, url_b):
            live = api(url, "GET", "/api/health", password).get("live")
            assert live == "ok", f"/api/health of {url} says live={live!r}"
        return f"engine {engine}"

    check("both instances report live ok in /api/health", health_ok)

    versions = {}

    def create_dashboard():
        saved = api(url_b, "POST", "/api/dashboards/db", password, {"dashboard": {"uid": uid, "title": f"Live {suffix}"}})
        versions["v"] = saved["version"]

    check("a dashboard is created through B", create_dashboard)
    cookies = {}

    def login():
        cookies["a"] = session_cookie(url_a, password)

    check("POST /login on A gives a session cookie", login)
    cookie = cookies["a"]

    py_proxy = await Proxy(a).start()
    js_proxy = await Proxy(b).start()
    py = PySdk(py_proxy.ws_url, cookie)
    js = await JsSdk().start()
    try:

        async def py_connects():
            await py.connect()
            event = await py.events.expect("connected", lambda e: e["ev"] == "connected")
            return f"client {event['client']}"

        await acheck("centrifuge-python connects to A with the session cookie", py_connects)

        async def js_connects():
            await js.connect(js_proxy.ws_url, cookie)
            event = await js.events.expect("connected", lambda e: e["ev"] == "connected")
            return f"client {event['client']}"

        await acheck("the centrifuge JavaScript SDK connects to B with the same cookie", js_connects)

        def subscribed(channel):
            return lambda e: e["ev"] == "subscribed" and e["channel"] == channel

        async def save_on(url, sdk):
            saved = api(url, "POST", "/api/dashboards/db", password,
                        {"dashboard": {"uid": uid, "title": f"Live {suffix}", "version": versions["v"]}})  # fmt: skip
            versions["v"] = saved["version"]
            (event,) = await sdk.events.publications(dashboard_channel, 1)
            expected = {"uid": uid, "action": "saved", "rv": saved["version"]}
            assert event["data"] == expected, f"pushed {event['data']!r}, expected {expected!r}"
            return f"rv {saved['version']}"

        async def py_dashboard_push():
            await py.subscribe(dashboard_channel)
            await py.events.expect("subscribed", subscribed(dashboard_channel))
            return await save_on(url_b, py)

        await acheck("python on A subscribes to the dashboard; a save through B is pushed to it", py_dashboard_push)

        async def js_dashboard_push():
            await js.subscribe(dashboard_channel)
            await js.events.expect("subscribed", subscribed(dashboard_channel))
            return await save_on(url_a, js)

        await acheck("javascript on B subscribes to the dashboard; a save through A is pushed to it", js_dashboard_push)

        offsets = {}

        async def py_to_js_and_back():
            await py.subscribe(broadcast)
            py_sub = await py.events.expect("subscribed", subscribed(broadcast))
            await js.subscribe(broadcast)
            js_sub = await js.events.expect("subscribed", subscribed(broadcast))
            assert py_sub["recoverable"] and js_sub["recoverable"], f"no history on broadcast: {py_sub!r} {js_sub!r}"
            await py.publish(broadcast, {"from": "python", "n": 1})
            (js_got,) = await js.events.publications(broadcast, 1)
            assert js_got["data"] == {"from": "python", "n": 1}, f"javascript got {js_got!r}"
            await js.publish(broadcast, {"from": "js", "n": 2})
            py_got = await py.events.publications(broadcast, 2)
            assert [e["data"] for e in py_got] == [{"from": "python", "n": 1}, {"from": "js", "n": 2}], f"python got {py_got!r}"
            (js_own,) = await js.events.publications(broadcast, 1)
            assert js_own["data"]["n"] == 2, f"javascript's own publication came back as {js_own!r}"
            first = js_got["offset"]
            assert first > 0 and [e["offset"] for e in py_got] == [first, first + 1], f"offsets {py_got!r}"
            assert js_own["offset"] == first + 1, f"javascript saw offset {js_own['offset']}"
            offsets["last"] = first + 1
            return f"offsets {first}, {first + 1}"

        await acheck("a publication from python reaches javascript and back, with consecutive offsets", py_to_js_and_back)

        async def recover(sdk, proxy, other_sdk, target, name, start_n):
            proxy.cut_and_refuse()
            await sdk.events.expect("reconnecting", lambda e: e["ev"] == "connecting")
            missed = [{"missed": name, "n": start_n + i} for i in range(3)]
            for data in missed:
                await other_sdk.publish(broadcast, data)
            await other_sdk.events.publications(broadcast, 3)
            proxy.let_through_to(target)
            event = await sdk.events.expect("resubscribed", subscribed(broadcast))
            assert event["wasRecovering"] and event["recovered"], f"the resubscribe answered {event!r}"
            got = await sdk.events.publications(broadcast, 3)
            assert [e["data"] for e in got] == missed, f"recovered {got!r}, expected {missed!r}"
            first = offsets["last"] + 1
            assert [e["offset"] for e in got] == [first, first + 1, first + 2], f"offsets {got!r}"
            offsets["last"] = first + 2
            await asyncio.sleep(0.3)
            extra = sdk.events.drain_publications(broadcast)
            assert not extra, f"delivered again after the recovery: {extra!r}"
            return f"offsets {first}..{first + 2}"

        await acheck("python cut off from A reconnects to B and recovers the 3 it missed (recovered: true)",
                     lambda: recover(py, py_proxy, js, b, "python", 3))  # fmt: skip
        await acheck("javascript cut off from B reconnects to A and recovers the 3 it missed (recovered: true)",
                     lambda: recover(js, js_proxy, py, a, "js", 6))  # fmt: skip

        async def live_after_recovery():
            await js.publish(broadcast, {"after": True})
            (got,) = await py.events.publications(broadcast, 1)
            assert got["data"] == {"after": True} and got["offset"] == offsets["last"] + 1, f"python got {got!r}"
            return f"offset {got['offset']}"

        await acheck("after both moved, javascript on A reaches python on B", live_after_recovery)
    finally:
        await py.close()
        await js.close()
        await py_proxy.close()
        await js_proxy.close()
    done()


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(run(*sys.argv[1:]))


if __name__ == "__main__":
    main()
