// Handing the listening sockets to a new process: it adopts them by fd, the
// old one stops accepting, and no client is refused in between.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait';
import { route, RecordingPicker, startBackend, startProxy } from './fixtures';
import { send } from './http';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('L7 proxy: listener handover', () => {
  it('a new process adopts the listening socket by fd and serves once the old one stops accepting', async () => {
    const [oldB, newB] = await Promise.all([startBackend('old'), startBackend('new')]);
    cleanups.push(() => oldB.close(), () => newB.close());
    const p = await startProxy([route('svc', new RecordingPicker([oldB.ep]))]);
    cleanups.push(() => p.proxy.close());
    expect((await send(`${p.url}/`)).body).toBe('old');

    const [l] = p.proxy.listeners();
    expect(l).toMatchObject({ port: 0, host: '127.0.0.1' });
    expect(l.fd).toBeGreaterThan(2);
    const child = spawn(process.execPath, ['--import', 'tsx', new URL('./handover-child.ts', import.meta.url).pathname, String(newB.ep.port)], {
      stdio: ['ignore', 'pipe', 'inherit', l.fd],
    });
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the new process ready', () => {
      if (child.exitCode !== null) throw new Error(`child exited ${child.exitCode}`);
      return out.includes('ready');
    });

    await p.proxy.stopAccepting();
    // every new connection now lands in the new process, none is refused
    const bodies = await Promise.all(Array.from({ length: 10 }, () => send(`${p.url}/`).then((a) => a.body)));
    expect(bodies).toEqual(Array(10).fill('new'));
  });
});
