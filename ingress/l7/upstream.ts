// Keep-alive connections to the backends: one undici Pool per endpoint,
// shared by every request and route that picks that endpoint. A pool is
// closed when its endpoint is in no route any more (setRoutes with route
// endpoints) or when it has gone unused for a sweep period, and never while a
// request is running on it.
//
// Routes with proxyProtocol: every upstream connection starts with a PROXY v2
// header naming one client, so such a connection cannot be shared between
// clients. Those requests get a pool per client connection and endpoint:
// keep-alive still works for that client, and the pool closes with the
// client's connection. The header is exactly that connection's addresses.
import type { Socket } from 'node:net';
import { Pool, buildConnector } from 'undici';
import type { Endpoint } from '../model';
import { encodeProxyV2, type SocketAddress } from './proxy-protocol';

export type PoolEntry = {
  readonly key: string;
  readonly pool: Pool;
  /** Requests dispatched and not yet finished. */
  inFlight: number;
  /** Picked since the last sweep. */
  used: boolean;
  /** To be closed once inFlight is 0. */
  retired: boolean;
};

export type UpstreamOptions = {
  connectTimeoutMs: number;
  /** Time to response headers, and the longest silence inside a response body. */
  upstreamTimeoutMs: number;
  /** How often unused pools are looked for (and the least time one stays unused before it is closed). */
  sweepMs?: number;
};

const kClientPools = Symbol('weft.l7.clientPools');
type ClientSocket = Socket & { [kClientPools]?: PoolEntry[] };

export class UpstreamPools {
  private readonly shared = new Map<string, PoolEntry>();
  private readonly perClient = new Map<string, PoolEntry>();
  private readonly connector: buildConnector.connector;
  private readonly sweeper: NodeJS.Timeout;
  private readonly poolOptions: Pool.Options;

  constructor(private readonly o: UpstreamOptions) {
    this.connector = buildConnector({ timeout: o.connectTimeoutMs, noDelay: true, keepAlive: true } as buildConnector.BuildOptions);
    this.poolOptions = {
      connect: this.connector,
      headersTimeout: o.upstreamTimeoutMs,
      bodyTimeout: o.upstreamTimeoutMs,
      pipelining: 1,
      // The response head is checked by undici; the client's limit applies to what comes in.
      maxHeaderSize: 64 * 1024,
    };
    this.sweeper = setInterval(() => this.sweep(), o.sweepMs ?? 30_000).unref();
  }

  /** The pool for a request to `ep`; call release() when the request has finished. */
  acquire(ep: Endpoint): PoolEntry {
    let e = this.shared.get(ep.key);
    if (e === undefined || e.retired) {
      e = newEntry(ep.key, new Pool(`http://${ep.key}`, this.poolOptions));
      this.shared.set(ep.key, e);
    }
    e.inFlight++;
    e.used = true;
    return e;
  }

  /**
   * The pool for a request to `ep` of a proxyProtocol route from the client on
   * `socket`, whose connection is from `source` to `destination`.
   */
  acquireForClient(ep: Endpoint, socket: Socket, source: SocketAddress, destination: SocketAddress): PoolEntry {
    const key = `${ep.key}|${source.ip}|${source.port}|${destination.ip}|${destination.port}`;
    let e = this.perClient.get(key);
    if (e === undefined || e.retired) {
      const header = encodeProxyV2(source, destination);
      const base = this.connector;
      const connect: buildConnector.connector = (opts, cb) =>
        base(opts, (err, s) => {
          if (err) return cb(err, null);
          // Before undici writes anything: the header must be the first byte on the connection.
          s!.write(header);
          cb(null, s!);
        });
      e = newEntry(key, new Pool(`http://${ep.key}`, { ...this.poolOptions, connect }));
      this.perClient.set(key, e);
      const cs = socket as ClientSocket;
      if (cs[kClientPools] === undefined) {
        cs[kClientPools] = [];
        socket.once('close', () => this.clientClosed(cs));
      }
      cs[kClientPools].push(e);
    }
    e.inFlight++;
    e.used = true;
    return e;
  }

  release(e: PoolEntry): void {
    e.inFlight--;
    if (e.retired && e.inFlight === 0) this.closeEntry(e);
  }

  /**
   * After a route change: close the pools of endpoints not in `keep` (when
   * every route lists its endpoints; undefined: keep all until they idle out).
   */
  retain(keep: ReadonlySet<string> | undefined): void {
    if (keep === undefined) return;
    for (const e of this.shared.values()) if (!keep.has(e.key)) this.retire(e);
    for (const e of this.perClient.values()) if (!keep.has(e.key.slice(0, e.key.indexOf('|')))) this.retire(e);
  }

  /** Closes the pools nobody picked since the previous sweep. */
  sweep(): void {
    for (const e of this.shared.values()) {
      if (!e.used && e.inFlight === 0) this.retire(e);
      e.used = false;
    }
    for (const e of this.perClient.values()) {
      if (!e.used && e.inFlight === 0) this.retire(e);
      e.used = false;
    }
  }

  /** Destroys every pool, running requests included. */
  async destroy(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.shared.values(), ...this.perClient.values()];
    this.shared.clear();
    this.perClient.clear();
    await Promise.all(all.map((e) => e.pool.destroy().catch(() => undefined)));
  }

  private clientClosed(cs: ClientSocket): void {
    const list = cs[kClientPools] ?? [];
    cs[kClientPools] = undefined;
    for (const e of list) this.retire(e);
  }

  private retire(e: PoolEntry): void {
    if (!e.retired) {
      e.retired = true;
      // Gone from the maps at once: a new request for the key gets a fresh pool.
      const map = e.key.includes('|') ? this.perClient : this.shared;
      if (map.get(e.key) === e) map.delete(e.key);
    }
    if (e.inFlight === 0) this.closeEntry(e);
  }

  private closeEntry(e: PoolEntry): void {
    if (e.pool.closed) return;
    // close() lets queued work finish; there is none (inFlight is 0), so the sockets go now.
    e.pool.close().catch(() => undefined);
  }
}

function newEntry(key: string, pool: Pool): PoolEntry {
  return { key, pool, inFlight: 0, used: false, retired: false };
}
