// Seamless upgrade, HAProxy style (`expose-fd listeners` + `-x`): a running
// ingress offers its listening sockets on a unix socket in its state dir
// (handoff.sock, 0600, in a 0700 dir); `weft ingress --takeover` connects,
// receives them with SCM_RIGHTS, serves on them, and only then says "ready".
// The old process then stops accepting, drains and exits 0.
//
// Why no connection attempt is refused: the listening socket is one kernel
// object with one accept queue, held by both processes during the overlap.
// The old process accepts until the new one is accepting on the same socket,
// and when the old one closes its descriptor the socket stays open (the new
// one holds it), so connections waiting in the queue are accepted by the
// new process. Nothing is closed and re-bound.
//
// Protocol (lines of text over the stream, after the first message):
//   old -> new  offer JSON + "\n", with one descriptor per listener attached
//   new -> old  "ready\n"   (new serves on every descriptor)
//   old -> new  "bye\n"     (old stopped accepting and removed handoff.sock:
//                            the new process may now bind its own)
// A new process that goes away before "ready" changes nothing for the old one.
import { chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, Socket, type Server } from 'node:net';
import { join } from 'node:path';
import { WeftError } from '../controller/common/errors';
import type { Logger } from '../controller/common/log';
import { closeFd, connectUnix, FdPassError, MAX_FDS, recvWithFds, sendWithFds } from './handoff-fds';

export const HANDOFF_SOCKET = 'handoff.sock';

export function handoffPath(stateDir: string): string {
  return join(stateDir, HANDOFF_SOCKET);
}

/** What the old process hands over besides the descriptors. */
export type Offer = {
  pid: number;
  version: string;
  /** In the order of the descriptors. */
  listeners: { port: number; host: string }[];
  /** The nftables table the old process programmed; the new one adopts it as it is. */
  nftTable: string;
};

export type OfferedListener = { port: number; host: string; fd: number };

/** A handover that cannot happen; `errno` is the failed call's, or EPROTO for an answer that makes no sense. */
export class HandoffError extends WeftError {
  constructor(readonly errno: `E${string}`, message: string, options?: { cause?: unknown }) {
    super('WEFT_INGRESS_HANDOFF', message, options);
    this.name = 'HandoffError';
  }
}

// ---- the running (old) process -------------------------------------------------

export type HandoffServer = { close(): Promise<void> };

export type HandoffHooks = {
  /** The listeners to offer now (their descriptors stay open in this process until stopAccepting). */
  offer(): { listeners: OfferedListener[]; nftTable: string; version: string };
  /** The new process serves on every listener: stop accepting (closing our copies of the descriptors). */
  stopAccepting(): Promise<void>;
  /** After "bye": drain what is in flight and exit, leaving the kernel state (L4 table) to the new process. */
  handedOver(byPid: number | undefined): void;
};

/**
 * Listens on handoff.sock; at most one takeover runs at a time. Refuses to
 * start when another process already answers there (two ingresses on one
 * state dir), and removes a stale socket file left by a crash.
 */
export async function serveHandoff(stateDir: string, hooks: HandoffHooks, log: Logger): Promise<HandoffServer> {
  const path = handoffPath(stateDir);
  await removeStaleSocket(path);
  let busy = false;
  let closed = false;
  const server: Server = createServer({ pauseOnConnect: true }, (sock) => {
    if (busy || closed) {
      sock.destroy();
      return;
    }
    busy = true;
    offerTo(sock).finally(() => (busy = false));
  });

  async function offerTo(sock: Socket): Promise<void> {
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
    let peerPid: number | undefined;
    try {
      if (typeof fd !== 'number' || fd < 0) throw new HandoffError('EBADF', 'the handoff connection has no descriptor to send on');
      const o = hooks.offer();
      if (o.listeners.length > MAX_FDS) throw new HandoffError('EPROTO', `${o.listeners.length} listeners: at most ${MAX_FDS} can be handed over`);
      const offer: Offer = { pid: process.pid, version: o.version, listeners: o.listeners.map(({ port, host }) => ({ port, host })), nftTable: o.nftTable };
      sendWithFds(fd, Buffer.from(JSON.stringify(offer) + '\n'), o.listeners.map((l) => l.fd));
      log.info({ listeners: offer.listeners }, 'takeover: listening sockets offered, waiting for the new process');
      const line = await readLine(sock, 120_000);
      if (!line.startsWith('ready')) {
        log.warn({ got: line || '(connection closed)' }, 'takeover abandoned by the new process; serving on');
        sock.destroy();
        return;
      }
      peerPid = Number(line.split(' ')[1]) || undefined;
    } catch (err) {
      log.error({ err }, 'takeover failed; serving on');
      sock.destroy();
      return;
    }
    log.info({ newPid: peerPid }, 'takeover: the new process serves on every listener; stopping accepting');
    closed = true;
    try {
      await hooks.stopAccepting();
    } finally {
      await closeServer();
      sock.end('bye\n');
    }
    hooks.handedOver(peerPid);
  }

  // Stops listening at once (close's callback would wait for the handoff connection itself to end).
  const closeServer = async () => {
    server.close();
    await unlink(path).catch(() => {});
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new HandoffError(((e as NodeJS.ErrnoException).code ?? 'EIO') as `E${string}`, `cannot listen on ${path} for takeovers: ${e.message}`, { cause: e })));
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  return {
    async close() {
      if (closed) return;
      closed = true;
      await closeServer();
    },
  };
}

/** A socket file nobody answers on is a crash's leftover: remove it. One that answers belongs to a running ingress. */
async function removeStaleSocket(path: string): Promise<void> {
  const answer = await new Promise<'none' | 'stale' | 'alive'>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve('alive');
    });
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ENOENT' ? 'none' : 'stale'));
  });
  if (answer === 'alive') {
    throw new HandoffError('EADDRINUSE', `another weft ingress is running with this state dir (it answers on ${path}); stop it, or start this one with --takeover to replace it without dropping connections`);
  }
  if (answer === 'stale') await unlink(path).catch(() => {});
}

function readLine(sock: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const done = (s: string) => {
      clearTimeout(t);
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.off('error', onClose);
      resolve(s);
    };
    const onData = (b: Buffer) => {
      buf += b.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) done(buf.slice(0, i));
    };
    const onClose = () => done('');
    const t = setTimeout(() => done(''), timeoutMs);
    sock.on('data', onData);
    sock.once('close', onClose);
    sock.once('error', onClose);
    sock.resume();
  });
}

// ---- the new process (--takeover) ----------------------------------------------

export type Takeover = {
  offer: Offer;
  /** One per offer.listeners entry, same order; ours now (close-on-exec). */
  listeners: OfferedListener[];
  /**
   * Tells the old process this one serves on every listener, and resolves
   * once it has stopped accepting and given up handoff.sock (or gone away).
   */
  confirm(): Promise<void>;
  /** Gives up: closes the received descriptors and the connection; the old process serves on. */
  abandon(): void;
};

/**
 * Connects to the running ingress and receives its listening sockets.
 * Fails with a HandoffError when nobody answers (ENOENT, ECONNREFUSED: no
 * ingress runs with this state dir) or the answer makes no sense.
 */
export function takeOver(stateDir: string, timeoutMs = 10_000): Takeover {
  const path = handoffPath(stateDir);
  let conn: number;
  try {
    conn = connectUnix(path, timeoutMs);
  } catch (e) {
    const code = e instanceof FdPassError ? (e.code as `E${string}`) : 'EIO';
    throw new HandoffError(code, `--takeover: no running weft ingress to take over: nothing answers on ${path} (${code}); start without --takeover`, { cause: e });
  }
  const fds: number[] = [];
  let text = '';
  try {
    // Blocking reads (bounded by SO_RCVTIMEO): nothing else runs yet in this process.
    while (!text.includes('\n')) {
      const r = recvWithFds(conn);
      fds.push(...r.fds);
      if (r.data.length === 0) throw new HandoffError('EPROTO', `the running ingress closed ${path} before offering its listeners`);
      text += r.data.toString();
    }
    let offer: Offer;
    try {
      offer = JSON.parse(text.slice(0, text.indexOf('\n'))) as Offer;
    } catch (e) {
      throw new HandoffError('EPROTO', `the running ingress sent an offer that is not JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(offer.listeners) || offer.listeners.length !== fds.length) {
      throw new HandoffError('EPROTO', `the running ingress offered ${offer.listeners?.length} listeners with ${fds.length} descriptors`);
    }
    const listeners = offer.listeners.map((l, i) => ({ port: l.port, host: l.host, fd: fds[i] }));
    const sock = new Socket({ fd: conn, readable: true, writable: true });
    return {
      offer,
      listeners,
      async confirm() {
        sock.write(`ready ${process.pid}\n`);
        await readLine(sock, 60_000);
        sock.destroy();
      },
      abandon() {
        for (const fd of fds) closeFd(fd);
        sock.destroy();
      },
    };
  } catch (e) {
    for (const fd of fds) closeFd(fd);
    closeFd(conn);
    if (e instanceof HandoffError) throw e;
    throw new HandoffError(e instanceof FdPassError ? (e.code as `E${string}`) : 'EIO', `--takeover: receiving the listeners from ${path} failed: ${(e as Error).message}`, { cause: e });
  }
}
