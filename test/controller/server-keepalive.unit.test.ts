// The controller's server finds a peer that stopped answering (a host that
// crashed or was cut off without a FIN) by its keepalive pings, and lets its
// watch stream go; without them the stream and its buffers stay forever.
// The peer is a real gRPC client behind a loopback relay the test can freeze:
// frozen, nothing passes either way, as with a dead host.
import { type AddressInfo, createServer, type Server, type Socket, connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { controllerClientConstructor } from '../../controller/api/proto';
import { KEEPALIVE, serverOptions } from '../../controller/service/server-options';
import { waitFor } from '../helpers/wait';
import { type Harness, ID_HEADER, registerHost, startHarness } from './api-harness';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Relay = { port: number; freeze(): void };

/** 127.0.0.1:<port> relayed to `target`, one upstream connection per client connection. */
async function relay(target: number): Promise<Relay> {
  const pairs: Array<[Socket, Socket]> = [];
  const server: Server = createServer((down) => {
    const up = connect(target, '127.0.0.1');
    pairs.push([down, up]);
    down.pipe(up);
    up.pipe(down);
    down.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const [a, b] of pairs) { a.destroy(); b.destroy(); }
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as AddressInfo).port,
    freeze() {
      for (const [down, up] of pairs) {
        down.unpipe(up);
        up.unpipe(down);
        down.pause();
        up.pause();
      }
    },
  };
}

async function watchThroughRelay(h: Harness): Promise<Relay> {
  const r = await relay(h.port);
  const Client = controllerClientConstructor();
  const client = new Client(`127.0.0.1:${r.port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  cleanups.push(() => client.close());
  const md = new grpc.Metadata();
  md.set(ID_HEADER, 'host:h1');
  const s: grpc.ClientReadableStream<any> = (client as any).WatchTopology({ from_revision: 0 }, md);
  s.on('error', () => undefined);
  cleanups.push(() => s.cancel());
  await new Promise<void>((resolve) => s.once('data', () => resolve()));
  return r;
}

describe('server keepalive', () => {
  it('pings every connection on a schedule that finds a dead peer within three heartbeat intervals', () => {
    // Hosts heartbeat every lease TTL / 3 (20 s with the default 60 s TTL).
    expect(KEEPALIVE.timeMs + KEEPALIVE.timeoutMs).toBeLessThanOrEqual(3 * 20_000);
    expect(serverOptions()).toMatchObject({ 'grpc.keepalive_time_ms': KEEPALIVE.timeMs, 'grpc.keepalive_timeout_ms': KEEPALIVE.timeoutMs });
  });

  it('closes the connection of a peer that stopped answering, and ends its watch stream', async () => {
    const keepalive = { timeMs: 300, timeoutMs: 300 };
    const pinging = await startHarness({ serverOptions: serverOptions(keepalive) });
    cleanups.push(() => pinging.close());
    const silent = await startHarness();
    cleanups.push(() => silent.close());
    for (const h of [pinging, silent]) await registerHost(h, 'h1', 1);
    const [a, b] = [await watchThroughRelay(pinging), await watchThroughRelay(silent)];
    expect([pinging.openStreams(), silent.openStreams()]).toEqual([1, 1]);

    a.freeze();
    b.freeze();
    const t0 = Date.now();
    await waitFor('the pinging server to drop the frozen peer', () => pinging.openStreams() === 0, 10_000, 20);
    const took = Date.now() - t0;
    // Within a ping interval and its timeout, give or take scheduling.
    expect(took).toBeLessThan(keepalive.timeMs + keepalive.timeoutMs + 1500);
    // The same dead peer on a server without keepalive: its stream is still held.
    expect(silent.openStreams()).toBe(1);
  });
});
