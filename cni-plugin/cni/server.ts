// The agent's end of the shim protocol (cni-plugin/shim/weft.c): a unix
// socket that takes one framed request per connection, parses it, runs the
// verb's handler and answers with the exit status and stdout the shim is to
// produce. Nothing a client sends can crash the agent or leave a connection
// hanging: every failure becomes a CNI error object.
//
// Frames (integers unsigned 32-bit big-endian):
//   request: "WCN1" | env length | "KEY=VALUE\0"... | stdin length | stdin
//   reply:   "WCN1" | exit status | stdout length | stdout
import { chmodSync, lstatSync, mkdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { type Logger, silentLogger } from '../../controller/common/log';
import type { CniHandlers } from './types';
import { configVersion, FALLBACK_VERSION, parseCommand, parseRequest, type CniEnv } from './parse';
import { renderError, renderResult, renderVersion } from './render';
import { CNI_ERR, CniError, type CniRequest } from './types';

export type CniServerOptions = {
  socketPath: string;
  handlers: CniHandlers;
  logger?: Logger;
  /** Handlers running at once; more requests wait their turn. Default 16. */
  maxConcurrent?: number;
  /** How long a client may take to send its whole request. Default 5000 ms. */
  readTimeoutMs?: number;
};

export type CniServer = { close(): Promise<void> };

const MAGIC = Buffer.from('WCN1');
// Keep in step with MAX_ENV in cni-plugin/shim/weft.c.
const MAX_ENV = 64 * 1024;
const MAX_STDIN = 1024 * 1024;
const MAX_SOCKET_PATH = 107;

// ---- framing ----------------------------------------------------------------

type Frame = { env: CniEnv; stdin: Buffer };

/** Decodes a request once all of it has arrived; undefined while more is needed. Bytes that are not a request throw a CniError. */
export function decodeRequest(buf: Buffer): Frame | undefined {
  if (buf.length >= 4 && !buf.subarray(0, 4).equals(MAGIC)) {
    throw new CniError(CNI_ERR.DECODE_FAILURE, 'request is not in the weft shim protocol');
  }
  if (buf.length < 8) return undefined;
  const envLen = buf.readUInt32BE(4);
  // The shim refuses such an environment itself (MAX_ENV in weft.c); this is the same answer for
  // any other client: the runtime's variables are what is wrong, not the framing.
  if (envLen > MAX_ENV) throw new CniError(CNI_ERR.INVALID_ENV, 'the CNI_* environment is larger than 64 KiB');
  if (buf.length < 12 + envLen) return undefined;
  const stdinLen = buf.readUInt32BE(8 + envLen);
  if (stdinLen > MAX_STDIN) {
    // The same answer the shim gives when it refuses to send such a config.
    throw new CniError(CNI_ERR.IO_FAILURE, 'network configuration on stdin is larger than 1 MiB');
  }
  const end = 12 + envLen + stdinLen;
  if (buf.length < end) return undefined;
  if (buf.length > end) throw new CniError(CNI_ERR.DECODE_FAILURE, 'unexpected bytes after the request');
  const env: CniEnv = {};
  for (const item of buf.toString('utf8', 8, 8 + envLen).split('\0')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CniError(CNI_ERR.DECODE_FAILURE, 'request environment is malformed');
    env[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return { env, stdin: buf.subarray(12 + envLen, end) };
}

export function encodeReply(status: number, stdout: string): Buffer {
  const body = Buffer.from(stdout, 'utf8');
  const head = Buffer.alloc(12);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(status, 4);
  head.writeUInt32BE(body.length, 8);
  return Buffer.concat([head, body]);
}

function readFrame(sock: Socket, timeoutMs: number): Promise<Frame> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err: Error | undefined, frame?: Frame): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('error', onError);
      sock.off('close', onClose);
      if (err) reject(err);
      else resolve(frame as Frame);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      try {
        const frame = decodeRequest(buf);
        if (frame) done(undefined, frame);
      } catch (e) {
        done(e as Error);
      }
    };
    const onEnd = (): void => done(new CniError(CNI_ERR.DECODE_FAILURE, 'request ended before it was complete'));
    const onError = (e: Error): void => done(e);
    const onClose = (): void => done(new Error('connection closed before the request was complete'));
    const timer = setTimeout(
      () => done(new CniError(CNI_ERR.DECODE_FAILURE, `request not received in full within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('error', onError);
    sock.on('close', onClose);
  });
}

// ---- ordering -----------------------------------------------------------------

type Runner = <T>(fn: () => Promise<T>) => Promise<T>;

/** At most `n` at once; the rest wait in arrival order. */
function limit(n: number): Runner {
  let free = n;
  const waiting: Array<() => void> = [];
  return async (fn) => {
    if (free > 0) free--;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}

/** One at a time per key, in arrival order: ADD and DEL of a container never overlap. */
function perKey(): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<void>>();
  return async (key, fn) => {
    const prev = tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

/**
 * GC decides what is stale from a list the runtime made before it called; an
 * ADD running meanwhile would look stale. So GC waits for running container
 * verbs to finish and holds new ones back until it is done.
 */
function gcGate(): { shared: Runner; exclusive: Runner } {
  let barrier: Promise<void> = Promise.resolve();
  const running = new Set<Promise<unknown>>();
  return {
    shared: async (fn) => {
      for (;;) {
        const b = barrier;
        await b;
        if (b === barrier) break; // else a GC started while this one waited
      }
      const p = fn();
      running.add(p);
      try {
        return await p;
      } finally {
        running.delete(p);
      }
    },
    exclusive: async (fn) => {
      let release!: () => void;
      const mine = new Promise<void>((r) => (release = r));
      const before = barrier;
      barrier = before.then(() => mine);
      try {
        await before;
        await Promise.allSettled([...running]);
        return await fn();
      } finally {
        release();
      }
    },
  };
}

// ---- requests -------------------------------------------------------------------

type Reply = { status: number; stdout: string };

/**
 * What the runtime is told. A CniError is a condition the parser or a handler
 * knows, with its spec code; a failed system call (Node's system errors carry
 * `syscall`) is an I/O failure. Anything else is a fault inside the agent:
 * INTERNAL with its message, not "try again later", since a retry would meet
 * the same fault.
 */
function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  const sys = err as NodeJS.ErrnoException;
  if (typeof sys.code === 'string' && typeof sys.syscall === 'string') {
    return new CniError(CNI_ERR.IO_FAILURE, err.message, `${sys.syscall}: ${sys.code}`, { cause: err });
  }
  return new CniError(CNI_ERR.INTERNAL, `internal error in the weft agent: ${err.message}`, err.name, { cause: err });
}

export function startCniServer(opts: CniServerOptions): Promise<CniServer> {
  const { socketPath, handlers } = opts;
  const log = opts.logger ?? silentLogger;
  const readTimeoutMs = opts.readTimeoutMs ?? 5000;
  const concurrency = limit(Math.max(1, opts.maxConcurrent ?? 16));
  const serial = perKey();
  const gate = gcGate();
  const conns = new Set<Socket>();
  /** Connections whose request has not fully arrived yet. */
  const reading = new Set<Socket>();
  const inflight = new Set<Promise<void>>();

  function dispatch(req: CniRequest): Promise<string> {
    const run = async (): Promise<string> => {
      switch (req.command) {
        case 'ADD':
          return renderResult(await handlers.add(req), req.config.cniVersion);
        case 'DEL':
          await handlers.del(req);
          return '';
        case 'CHECK':
          await handlers.check(req);
          return '';
        case 'STATUS':
          await handlers.status(req);
          return '';
        case 'GC':
          await handlers.gc(req);
          return '';
        default:
          throw new CniError(CNI_ERR.INVALID_ENV, `unknown CNI_COMMAND "${req.command}"`);
      }
    };
    if (req.command === 'STATUS') return concurrency(run);
    if (req.command === 'GC') return gate.exclusive(() => concurrency(run));
    return serial(req.containerId, () => gate.shared(() => concurrency(run)));
  }

  async function answer(frame: Frame): Promise<Reply> {
    const started = process.hrtime.bigint();
    let req: CniRequest | undefined;
    try {
      if (parseCommand(frame.env) === 'VERSION') return { status: 0, stdout: renderVersion() };
      req = parseRequest(frame.env, frame.stdin);
      const stdout = await dispatch(req);
      log.info(
        { command: req.command, containerId: req.containerId, ifname: req.ifname, ms: elapsed(started) },
        'cni request done',
      );
      return { status: 0, stdout };
    } catch (e) {
      const err = toCniError(e);
      const fields = { command: frame.env.CNI_COMMAND, containerId: frame.env.CNI_CONTAINERID, cniCode: err.cniCode, ms: elapsed(started) };
      // a refusal is logged as the runtime sees it; a fault with what was thrown, stack and all
      if (err.cniCode === CNI_ERR.INTERNAL) log.error({ ...fields, err: e }, 'cni handler failed');
      else log.warn({ ...fields, err }, 'cni request refused');
      return { status: 1, stdout: renderError(err, req?.config.cniVersion ?? configVersion(frame.stdin)) };
    }
  }

  async function serve(sock: Socket): Promise<void> {
    let reply: Reply;
    try {
      const frame = await readFrame(sock, readTimeoutMs);
      reading.delete(sock);
      reply = await answer(frame);
    } catch (e) {
      if (!(e instanceof CniError)) {
        sock.destroy(); // the peer is gone; nobody to answer
        return;
      }
      log.warn({ err: e }, 'malformed cni request');
      reply = { status: 1, stdout: renderError(e, FALLBACK_VERSION) };
    }
    // The shim may have given up meanwhile; its absence is not an error here.
    if (!sock.destroyed) sock.end(encodeReply(reply.status, reply.stdout));
  }

  // Half-open allowed: a client that shuts down its sending side after the
  // request must still get the reply.
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    conns.add(sock);
    reading.add(sock);
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      conns.delete(sock);
      reading.delete(sock);
    });
    const p = serve(sock).catch((e: unknown) => {
      log.error({ err: e }, 'cni connection failed');
      sock.destroy();
    });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  });

  return listen(server, socketPath).then((ino) => ({
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      removeIfOurs(socketPath, ino);
      // Requests being handled still get their answer; unfinished ones do not hold us up.
      for (const s of reading) s.destroy();
      await Promise.allSettled([...inflight]);
      for (const s of conns) s.destroy();
      await closed;
    },
  }));
}

function elapsed(start: bigint): number {
  return Number((process.hrtime.bigint() - start) / 1000n) / 1000;
}

// ---- the socket file -----------------------------------------------------------

/** Whether something accepts connections at path (a crashed agent leaves a socket file nobody listens on). */
function isLive(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', (e: NodeJS.ErrnoException) => {
      c.destroy();
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') resolve(false);
      else reject(new Error(`cannot tell whether ${path} is in use: ${e.message}`));
    });
  });
}

/**
 * Listens on a private name, sets mode 0600, then renames onto socketPath:
 * the socket is never reachable with looser permissions, and a stale one is
 * replaced in one step, so a shim never finds the path missing. Returns the
 * socket's inode so close() removes only its own file.
 */
async function listen(server: ReturnType<typeof createServer>, socketPath: string): Promise<number> {
  if (!socketPath.startsWith('/') || Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new Error(`agent socket path ${JSON.stringify(socketPath)} must be absolute and at most ${MAX_SOCKET_PATH} bytes`);
  }
  const dir = dirname(socketPath);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let existing;
  try {
    existing = lstatSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (existing && !existing.isSocket()) {
    throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
  }
  if (existing && (await isLive(socketPath))) {
    throw new Error(`another weft agent is already listening on ${socketPath}`);
  }
  const tmp = join(dir, `.weft-${process.pid}.sock`);
  if (Buffer.byteLength(tmp) > MAX_SOCKET_PATH) {
    throw new Error(`agent socket directory ${dir} is too long for a unix socket path`);
  }
  try {
    unlinkSync(tmp); // left by an earlier process with our pid
  } catch {
    /* usually absent */
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(tmp, () => {
      server.off('error', reject);
      resolve();
    });
  });
  try {
    chmodSync(tmp, 0o600);
    renameSync(tmp, socketPath);
    return statSync(socketPath).ino;
  } catch (e) {
    server.close();
    throw e;
  }
}

function removeIfOurs(path: string, ino: number): void {
  try {
    // A newer agent may have replaced the file; its socket is not ours to remove.
    if (statSync(path).ino === ino) unlinkSync(path);
  } catch {
    /* already gone */
  }
}
