// The one client of the controller's API, for every role: the agent, the
// ingress and the CLI. It knows the contract and nothing of its callers:
// typed unary calls, resumable watches handing over the raw events, and the
// connection's state. What a role makes of the events (the agent's topology,
// the ingress's backends) is the role's business.
//
// A watch never gives up: it reconnects with jittered exponential backoff
// and resumes from the last revision it delivered, so an outage costs
// neither a gap nor a duplicate; when the controller can no longer resume
// (history compacted) it answers with a SNAPSHOT, which the caller applies
// as a full replacement.
//
// A failure that is the controller's certificate rather than an outage (its
// names no longer include --server, another CA, expired) is retried like an
// outage, since the controller may be fixed while the client waits, but each
// time it is logged as an error that says what to change.
import * as grpc from '@grpc/grpc-js';
import {
  controllerClientConstructor, type ControllerStub, type RequestOf, type ResponseOf, type StreamMethod, type UnaryMethod,
} from '../proto';
import { type Logger, silentLogger } from '../../common/log';
import { backoff, type BackoffOptions } from './backoff';
import { certNames, certProblemMessage, certProblemOf, fetchServerChain } from './server-cert';
import { credentialFeed } from './live-credentials';

export type ConnectionState = 'connected' | 'connecting' | 'disconnected';

export type ConnectOptions = {
  /** host:port of the controller (or of a load balancer in front of several). */
  server: string;
  /** From channelCredentials (a joined identity) or clientCredentials (trust.ts). */
  credentials: grpc.ChannelCredentials;
  /** Sent with every call and watch. */
  metadata?: Record<string, string>;
  /** Deadline of each unary call; default 10 s. */
  callTimeoutMs?: number;
  /** Watch reconnects; default 250 ms doubling to 10 s. */
  backoff?: BackoffOptions;
  log?: Logger;
  channelOptions?: grpc.ChannelOptions;
  /** The CA this client trusts, as the message for a controller certificate it refuses names it. */
  trusted?: string;
  /** The client's credentials dir, named in the fix for a controller certificate from another CA. */
  stateDir?: string;
};

export type WatchOptions<M extends StreamMethod> = {
  /**
   * The last revision the caller has applied; the watch resumes after it.
   * 0 (the default): start with a snapshot.
   */
  fromRevision?: number;
  /** Every event as the controller sent it, in order. */
  onEvent(ev: ResponseOf<M>): void;
};

export type Watch = {
  /** The revision the watch resumes from after a reconnect: the last event's (a SNAPSHOT's even when lower). */
  revision(): number;
  stop(): void;
};

export type ControllerClient = {
  readonly server: string;
  /** One unary call; a failure carries the gRPC `code` and `details` (see isTransient). */
  call<M extends UnaryMethod>(method: M, req: RequestOf<M>): Promise<ResponseOf<M>>;
  /** WatchTopology or WatchServices, resumed across outages until stop() or close(). */
  watch<M extends StreamMethod>(method: M, o: WatchOptions<M>): Watch;
  connectionState(): ConnectionState;
  /** Called on every change of connectionState(); returns the unsubscribe function. */
  onConnectionState(fn: (s: ConnectionState) => void): () => void;
  /**
   * Moves to a channel with these credentials (a renewed certificate): new
   * calls use it at once, open watches end on the old channel and resume on
   * the new one from their revision, calls in flight finish on the old one.
   * Credentials linked to a renewal (live-credentials.ts) do this by themselves.
   */
  updateCredentials(credentials: grpc.ChannelCredentials): void;
  close(): void;
};

/** Worth retrying unchanged: the controller was away, busy or cut short. Anything else needs a different request. */
export function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'number') return true; // not a gRPC status: a local failure, try again
  return [
    grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED,
    grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.CANCELLED,
  ].includes(code);
}

export function grpcCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? grpc.status[code] ?? String(code) : 'LOCAL';
}

function stateOf(c: grpc.connectivityState, everReady: boolean): ConnectionState {
  switch (c) {
    case grpc.connectivityState.READY:
      return 'connected';
    case grpc.connectivityState.CONNECTING:
      return 'connecting';
    case grpc.connectivityState.IDLE:
      // Idle before the first connection is "not tried yet"; after one it means the connection dropped.
      return everReady ? 'disconnected' : 'connecting';
    default:
      return 'disconnected';
  }
}

/** "WatchTopology" -> "topology", for log lines. */
const watchName = (m: StreamMethod) => m.replace(/^Watch/, '').toLowerCase();

type UnaryFn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => grpc.ClientUnaryCall;
type StreamFn = (req: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<unknown>;

/**
 * The channel options of every client of the controller (agents, ingress,
 * CLI; the scale bench's simulated hosts too, so it measures what agents do).
 */
export function clientChannelOptions(maxBackoffMs = 10_000): grpc.ChannelOptions {
  return {
    // Find a controller that vanished without closing the connection (host crash, partition).
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 10_000,
    // grpc-js's own reconnect backoff grows to 2 minutes by default: a client would then notice a returned
    // controller long after our 10 s cap. Keep the channel's cap at ours.
    'grpc.initial_reconnect_backoff_ms': 250,
    'grpc.max_reconnect_backoff_ms': maxBackoffMs,
    // The receive window of each stream bounds what the controller sends at a time, and Node's TLS layer
    // keeps, for the life of a connection, output buffers as large as the most it ever encrypted at
    // once. With HTTP/2's 64 kB default every agent that once took a large snapshot cost the controller
    // about 100 kB more for as long as it stayed connected; 16 kB (one TLS record) costs nothing extra. The price
    // is a snapshot at 16 kB per round trip: 1 MB in 3 s over a 50 ms WAN.
    'grpc-node.flow_control_window': 16_384,
  };
}

export function connectController(o: ConnectOptions): ControllerClient {
  const log = o.log ?? silentLogger;
  const callTimeoutMs = o.callTimeoutMs ?? 10_000;
  const Client = controllerClientConstructor();
  const makeStub = (credentials: grpc.ChannelCredentials): ControllerStub => new Client(o.server, credentials, {
    ...clientChannelOptions(o.backoff?.maxMs),
    ...o.channelOptions,
  });
  let stub: ControllerStub = makeStub(o.credentials);
  let channel = stub.getChannel();
  /** Each open watch's way to move to a new channel. */
  const watches = new Set<{ reopen(): void }>();
  const metadata = () => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(o.metadata ?? {})) md.set(k, v);
    return md;
  };
  let closed = false;
  let everReady = false;
  let state: ConnectionState = 'connecting';
  const listeners = new Set<(s: ConnectionState) => void>();

  function setState(s: ConnectionState): void {
    if (s === state) return;
    state = s;
    log.info({ server: o.server, state: s }, 'controller connection');
    for (const l of [...listeners]) {
      try {
        l(s);
      } catch (err) {
        log.error({ err }, 'connection state listener failed');
      }
    }
  }

  // Follow the channel; a watch also reports a broken stream at once (the channel may notice later).
  // A channel replaced by updateCredentials is no longer followed.
  const follow = (ch: ReturnType<ControllerStub["getChannel"]>) => {
    if (closed || ch !== channel) return;
    const c = ch.getConnectivityState(false);
    if (c === grpc.connectivityState.SHUTDOWN) return;
    if (c === grpc.connectivityState.READY) everReady = true;
    setState(stateOf(c, everReady));
    ch.watchConnectivityState(c, Infinity, () => follow(ch));
  };
  channel.getConnectivityState(true);
  follow(channel);

  function updateCredentials(credentials: grpc.ChannelCredentials): void {
    if (closed) return;
    const old = stub;
    stub = makeStub(credentials);
    channel = stub.getChannel();
    channel.getConnectivityState(true);
    follow(channel);
    for (const w of [...watches]) w.reopen();
    // Unary calls already sent finish on the old channel; none outlives its deadline.
    setTimeout(() => old.close(), callTimeoutMs + 1000).unref();
    log.info({ server: o.server }, 'controller connection: moved to renewed credentials');
  }
  const unfollowFeed = credentialFeed(o.credentials)?.subscribe(updateCredentials);

  // Reading the certificate's names takes a handshake; one at a time is enough.
  let readingNames = false;
  function reportCertProblem(err: unknown): void {
    const problem = certProblemOf(err);
    if (!problem || closed) return;
    const report = (names?: string[]) => {
      if (closed) return;
      const message = certProblemMessage(problem, o.server, { names, trusted: o.trusted ?? 'the cluster CA', stateDir: o.stateDir });
      log.error({ server: o.server, problem, err }, `cannot connect to the controller: ${message}`);
    };
    if (problem !== 'name') return report();
    if (readingNames) return;
    readingNames = true;
    fetchServerChain(o.server, 5000)
      .then((chain) => report(chain[0] ? certNames(chain[0]) : undefined), () => report())
      .finally(() => (readingNames = false));
  }

  function call<M extends UnaryMethod>(method: M, req: RequestOf<M>): Promise<ResponseOf<M>> {
    if (closed) return Promise.reject(new Error(`controller client is closed (${method})`));
    const fn = (stub[method] as unknown as UnaryFn).bind(stub);
    return new Promise((resolve, reject) => {
      fn(req, metadata(), { deadline: Date.now() + callTimeoutMs }, (err, res) => {
        if (err) {
          // Keep the code and details reachable for callers that classify errors.
          const e = Object.assign(new Error(`${method} via ${o.server}: ${grpcCode(err)}: ${err.details || err.message}`, { cause: err }), {
            code: err.code, details: err.details,
          });
          reportCertProblem(err);
          reject(e);
        } else resolve(res as ResponseOf<M>);
      });
    });
  }

  function watch<M extends StreamMethod>(method: M, w: WatchOptions<M>): Watch {
    const what = watchName(method);
    let from = w.fromRevision ?? 0;
    let stopped = false;
    let stream: grpc.ClientReadableStream<unknown> | null = null;
    /** Marks the open stream as done, so its end is not taken for an outage. */
    let retire = () => {};
    let timer: NodeJS.Timeout | null = null;
    const delays = backoff(o.backoff);

    const open = () => {
      timer = null;
      if (stopped || closed) return;
      let over = false;
      // progress: told the revision while nothing changes for us, so a resume (after a controller restart) starts near the present.
      const s = (stub[method] as unknown as StreamFn).bind(stub)({ from_revision: from, progress: true }, metadata());
      stream = s;
      retire = () => {
        over = true;
      };
      // A stream that failed on a live connection left us "disconnected"; the channel will not say otherwise on its own.
      setState(stateOf(channel.getConnectivityState(false), everReady));
      log.debug({ from }, `watching ${what}`);
      s.on('data', (data: unknown) => {
        const ev = data as ResponseOf<M> & { kind: string; revision: number };
        delays.reset();
        // A SNAPSHOT replaces everything, so its revision is where to resume even when it is lower (a wiped store).
        from = ev.kind === 'SNAPSHOT' ? ev.revision : Math.max(from, ev.revision);
        if (ev.kind === 'PROGRESS') return; // a resume point, nothing to apply
        try {
          w.onEvent(ev);
        } catch (err) {
          log.error({ err, kind: ev.kind, revision: ev.revision }, `${what} event handler failed`);
        }
      });
      const again = (why: string, err?: grpc.ServiceError) => {
        if (over) return;
        over = true;
        if (stopped || closed) return;
        setState('disconnected');
        const ms = delays.next();
        log.warn({ why, code: err ? grpcCode(err) : undefined, err, retryInMs: ms, from }, `${what} watch interrupted`);
        if (err) reportCertProblem(err);
        timer = setTimeout(open, ms);
      };
      s.on('error', (err: grpc.ServiceError) => again('error', err));
      // A clean end means the controller is going away (its store closed): reconnect, maybe elsewhere.
      s.on('end', () => again('ended by the controller'));
    };
    const mover = {
      // Resume at once on the new channel from the last delivered revision: no gap, no duplicate.
      reopen() {
        if (stopped || closed) return;
        if (timer) clearTimeout(timer);
        retire();
        stream?.cancel();
        delays.reset();
        open();
      },
    };
    watches.add(mover);
    open();
    return {
      revision: () => from,
      stop() {
        stopped = true;
        watches.delete(mover);
        if (timer) clearTimeout(timer);
        stream?.cancel();
      },
    };
  }

  return {
    server: o.server,
    call,
    watch,
    connectionState: () => state,
    onConnectionState(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    updateCredentials,
    close() {
      closed = true;
      unfollowFeed?.();
      watches.clear();
      stub.close();
      setState('disconnected');
    },
  };
}
