// Loopback ports for daemons a test or bench starts.
import { createServer } from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (another process may take it before the caller binds it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    // a probe must never keep a process alive
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
