// The `centrifuge` JavaScript SDK (npm, package.json beside this file) driven by
// scripts/interop/live_sdks.py: one JSON command per line on stdin, one JSON event per
// line on stdout, so the Python side can make both SDKs act in one scenario.
//
// Commands (each with an "id", answered by {"ev":"done","id"} or {"ev":"failed","id","error"}):
//   {"op":"connect","url":"ws://…/api/live/ws","cookie":"grafana_session=…"}
//   {"op":"subscribe","channel":"1/grafana/broadcast/x"}
//   {"op":"publish","channel":"…","data":{…}}
//   {"op":"close"}
// Events: {"ev":"connected","client"}, {"ev":"connecting","code","reason"} (also while
// reconnecting), {"ev":"disconnected","code","reason"},
// {"ev":"subscribed","channel","recovered","wasRecovering","recoverable"},
// {"ev":"publication","channel","data","offset"}, {"ev":"unsubscribed","channel","code"},
// {"ev":"error","where","error"}.
//
// Node.js 20 has no global WebSocket: the SDK is given `ws`'s, which also carries the
// session cookie on the upgrade request (a browser sends it by itself).

import { createInterface } from 'node:readline';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';

let client = null;

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function socketWithCookie(cookie) {
  return class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { headers: { cookie } });
    }
  };
}

function connect({ url, cookie }) {
  client = new Centrifuge(url, {
    websocket: socketWithCookie(cookie),
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
    timeout: 5000,
  });
  client.on('connected', (ctx) => emit({ ev: 'connected', client: ctx.client }));
  client.on('connecting', (ctx) => emit({ ev: 'connecting', code: ctx.code, reason: ctx.reason }));
  client.on('disconnected', (ctx) => emit({ ev: 'disconnected', code: ctx.code, reason: ctx.reason }));
  client.on('error', (ctx) => emit({ ev: 'error', where: 'client', error: String(ctx.error?.message ?? ctx.error) }));
  client.connect();
}

function subscribe({ channel }) {
  const sub = client.newSubscription(channel, { minResubscribeDelay: 100, maxResubscribeDelay: 500 });
  sub.on('subscribed', (ctx) => emit({
    ev: 'subscribed',
    channel,
    recovered: ctx.recovered,
    wasRecovering: ctx.wasRecovering,
    recoverable: ctx.recoverable,
  }));
  sub.on('publication', (ctx) => emit({ ev: 'publication', channel, data: ctx.data, offset: ctx.offset ?? 0 }));
  sub.on('unsubscribed', (ctx) => emit({ ev: 'unsubscribed', channel, code: ctx.code }));
  sub.on('error', (ctx) => emit({ ev: 'error', where: channel, error: String(ctx.error?.message ?? ctx.error) }));
  sub.subscribe();
}

async function run(command) {
  switch (command.op) {
    case 'connect':
      return connect(command);
    case 'subscribe':
      return subscribe(command);
    case 'publish':
      return client.publish(command.channel, command.data);
    case 'close':
      client?.disconnect();
      process.exit(0);
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  let command;
  try {
    command = JSON.parse(line);
  } catch (err) {
    emit({ ev: 'failed', id: null, error: `not JSON: ${line}` });
    return;
  }
  try {
    await run(command);
    emit({ ev: 'done', id: command.id });
  } catch (err) {
    emit({ ev: 'failed', id: command.id, error: String(err?.message ?? JSON.stringify(err)) });
  }
});
lines.on('close', () => {
  client?.disconnect();
  process.exit(0);
});
