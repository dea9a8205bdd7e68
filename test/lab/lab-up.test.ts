// `npm run lab -- up` as an operator runs it: a lab of its own name, two
// hosts in two racks (so the overlay crosses a router), a running cluster
// whose matrix is all ok; a ping of our own between the two containers agrees;
// `status` measures it again, and shows FAIL once a container is cut off;
// `down` leaves no namespace, process or file.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterDir, readClusterRecord } from './cluster-up';
import { processStartTime } from './procs';
import { listNetns, nsRun } from './run';
import { readState, statePath } from './state';
import { ROOT } from '../e2e/cluster';

const NAME = `lu${process.pid.toString(36)}`;
const PREFIX = `wt-${NAME}.`;
const dir = mkdtempSync(join(tmpdir(), `weft-${NAME}-`));
const specFile = join(dir, 'spec.json');
writeFileSync(specFile, JSON.stringify({
  name: NAME,
  datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1'] }, { name: 'b', hosts: ['h2'] }] }],
  controller: true,
}));

/** Orphans of the exited `up` are reaped by init, which may not have got to it yet: a zombie is dead. */
function zombie(pid: number): boolean {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

type Run = { code: number | null; out: string };

function lab(args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'lab', '--', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

afterAll(async () => {
  // a failed run must not leave a persistent lab behind
  if (existsSync(statePath(NAME)) || listNetns().some((n) => n.startsWith(PREFIX))) await lab(['down', NAME], 60_000);
  rmSync(dir, { recursive: true, force: true });
}, 90_000);

describe('npm run lab -- up', () => {
  it('builds a cluster whose matrix is all ok, status measures it again (FAIL once a container is cut off), down leaves nothing', async () => {
    const t0 = Date.now();
    const up = await lab(['up', specFile, '--settle', '20'], 120_000);
    const upMs = Date.now() - t0;
    expect(up.code, up.out).toBe(0);
    // one progress line per phase, with its elapsed time
    for (const phase of ['namespaces', 'controller', 'agents', 'containers', 'matrix']) {
      expect(up.out, `phase ${phase}`).toMatch(new RegExp(`^\\[ *\\d+\\.\\ds\\] ${phase} `, 'm'));
    }
    expect(up.out).toMatch(/^2\/2 container pairs ok/m);
    expect(up.out).not.toMatch(/FAIL/);
    const cells = up.out.split('\n').filter((l) => /^h[12] 10\./.test(l));
    expect(cells.map((l) => (l.match(/ ok \d+\.\d+ms/g) ?? []).length)).toEqual([1, 1]);
    expect(up.out).toContain(`npm run lab -- down ${NAME}`);

    // what the matrix claims, checked with a ping of our own
    const rec = readClusterRecord(NAME);
    expect(rec?.containers.map((c) => c.host)).toEqual(['h1', 'h2']);
    const [c1, c2] = rec!.containers;
    expect(c1.netns).toBe(`${PREFIX}h1.c`);
    expect(nsRun(c1.netns, 'ping', ['-n', '-c', '1', '-W', '2', c2.ip], { check: false }).status).toBe(0);

    const status = await lab(['status', NAME], 60_000);
    expect(status.code, status.out).toBe(0);
    expect(status.out).toMatch(/^2\/2 container pairs ok/m);

    // a container cut off shows as FAIL both ways, with the reason, and status exits 3
    nsRun(c2.netns, 'ip', ['link', 'set', 'eth0', 'down']);
    const cut = await lab(['status', NAME], 60_000);
    expect(cut.code, cut.out).toBe(3);
    expect(cut.out).toMatch(/^0\/2 container pairs ok/m);
    expect(cut.out).toContain(`FAIL h1 ${c1.ip} -> h2 ${c2.ip}: 2 sent, 0 received`);
    expect(cut.out).toMatch(new RegExp(`FAIL h2 ${c2.ip.replace(/\./g, '\\.')} -> h1 \\S+: .*unreachable`));

    const state = readState(NAME)!;
    expect(state.processes.length).toBeGreaterThanOrEqual(3); // the controller and two agents
    const down = await lab(['down', NAME], 60_000);
    expect(down.code, down.out).toBe(0);
    expect(listNetns().filter((n) => n.startsWith(PREFIX))).toEqual([]);
    const alive = state.processes.filter((p) => processStartTime(p.pgid) === p.startTime && !zombie(p.pgid)).map((p) => p.cmd);
    expect(alive).toEqual([]);
    expect(existsSync(statePath(NAME))).toBe(false);
    expect(existsSync(clusterDir(NAME))).toBe(false);
    console.log(`lab up ${upMs} ms, down: ${down.out.trim().split('\n').pop()}`);
  }, 240_000);
});
