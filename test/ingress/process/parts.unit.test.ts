// The process's L7 part: closing a port nobody uses any more really closes
// its listener (new connections refused, the port free to bind again) and
// drains its connections, and a handed-over listener not adopted yet is
// dropped rather than opened later.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../controller/common/log';
import { loadIngressConfig } from '../../../ingress/config';
import { createIngressMetrics } from '../../../ingress/metrics';
import { createParts, type IngressParts } from '../../../ingress/parts';
import { route, RawClient, RecordingPicker, startBackend } from '../l7/fixtures';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function parts(): Promise<IngressParts> {
  // An IPv6 listen address keeps the L4 programmer from opening netlink: this test needs no privilege.
  const config = loadIngressConfig(['--server', '127.0.0.1:1', '--listen-address', '::1'], {}, { machineHostname: () => 'edge-test' });
  const p = await createParts(config, createIngressMetrics({ name: 'edge-test', version: 'test' }), silentLogger);
  cleanups.push(() => p.close());
  return p;
}

/** A port nothing listens on right now (the service port the runtime would ask for). */
async function freePort(): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function connectOutcome(port: number): Promise<string> {
  const c = new RawClient(port);
  return new Promise((resolve) => {
    c.socket.once('connect', () => {
      c.destroy();
      resolve('connected');
    });
    c.socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe('ingress parts: closePort', () => {
  it('closes the port’s listener, frees the port and closes its idle connections with a FIN', async () => {
    const b = await startBackend('b');
    cleanups.push(() => b.close());
    const p = await parts();
    const port = await freePort();
    await p.l7.listen({ port, host: '127.0.0.1' });
    p.l7.setRoutes(port, [{ ...route('svc', new RecordingPicker([b.ep])), endpoints: [b.ep] }]);
    const idle = new RawClient(port);
    cleanups.push(() => idle.destroy());
    await idle.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    expect((await idle.response()).body).toBe('b');
    expect(p.l7.listening()).toEqual([port]);

    await p.l7.closePort(port);
    expect(p.l7.listening()).toEqual([]);
    expect(await connectOutcome(port)).toBe('ECONNREFUSED');
    await idle.waitClosed();
    expect(idle.ended).toBe(true);
    expect(idle.error).toBeUndefined();
    // Free for whoever binds it next (this process again when a service comes back, or a restart).
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((r) => again.close(() => r()));
  });

  it('drops a handed-over listener that was not adopted yet, closing its descriptor', async () => {
    const p = await parts();
    // Stands in for a descriptor received from the previous process: closePort must close it, adopt() must not open it.
    const fd = openSync('/dev/null', 'r');
    cleanups.push(() => {
      try {
        closeSync(fd);
      } catch {
        // closed by the code under test, as expected
      }
    });
    p.l7.reserve([{ port: 8080, host: '0.0.0.0', fd }]);
    expect(p.l7.listening()).toEqual([8080]);
    await p.l7.closePort(8080);
    expect(p.l7.listening()).toEqual([]);
    expect(() => fstatSync(fd)).toThrow(/EBADF/);
    await p.l7.adopt();
    expect(p.l7.listenerFds()).toEqual([]);
  });
});
