// The saved service state: what is written reads back the same; a file that
// is missing, unreadable, not JSON, of another format or the wrong shape is
// refused with a logged error and never throws; writes are atomic and 0600.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeState, encodeState, readStateFile, stateFilePath, stateSaver, writeStateFile } from '../../../ingress/state-file';
import type { IngressService } from '../../../ingress/model';
import type { IngressState } from '../../../ingress/sync';

const web: IngressService = {
  name: 'web', network: 'default', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'http' }], hostnames: ['shop.example.com'],
  pathPrefix: '/', rackPolicy: 'prefer-local', affinity: 'none', healthPath: '/healthz', proxyProtocol: false,
  backends: [{ ip: '10.244.1.5', host: 'h1', rack: 'r1', datacenter: 'dc1', containerId: 'c1' }],
};
const state = (revision: number, ...s: IngressService[]): IngressState => ({ revision, services: new Map(s.map((x) => [x.name, x])) });

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  return { log, lines };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-ingress-state-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('state file', () => {
  it('reads back what it wrote, as plain JSON with the revision, mode 0600', async () => {
    await writeStateFile(dir, state(17, web));
    const text = readFileSync(stateFilePath(dir), 'utf8');
    expect(JSON.parse(text)).toMatchObject({ format: 1, revision: 17, services: [web] });
    expect(statSync(stateFilePath(dir)).mode & 0o777).toBe(0o600);
    const { log, lines } = capture();
    const back = await readStateFile(dir, log);
    expect(back!.revision).toBe(17);
    expect([...back!.services.values()]).toEqual([web]);
    expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
    // no temp file left behind
    expect(readdirSync(dir)).toEqual(['services.json']);
  });

  it('is quietly absent on a first start', async () => {
    const { log, lines } = capture();
    expect(await readStateFile(dir, log)).toBeUndefined();
    expect(lines).toEqual([]);
  });

  it.each([
    ['not JSON', '{"format":1,"revision":3,"services":[', 'not valid JSON'],
    ['truncated to nothing', '', 'not valid JSON'],
    ['an array', '[]', 'not a JSON object'],
    ['another format', JSON.stringify({ format: 2, revision: 1, services: [] }), 'format 2 is not 1'],
    ['a negative revision', JSON.stringify({ format: 1, revision: -1, services: [] }), 'revision -1'],
    ['a bad port', JSON.stringify({ format: 1, revision: 1, services: [{ ...web, ports: [{ name: 'x', port: 70000, targetPort: 1, protocol: 'http' }] }] }), 'services[0].ports'],
    ['a bad protocol', JSON.stringify({ format: 1, revision: 1, services: [{ ...web, ports: [{ name: 'x', port: 1, targetPort: 1, protocol: 'sctp' }] }] }), 'services[0].ports'],
    ['a backend without ip', JSON.stringify({ format: 1, revision: 1, services: [{ ...web, backends: [{ host: 'h' }] }] }), 'services[0].backends'],
    ['a duplicate service', JSON.stringify({ format: 1, revision: 1, services: [web, web] }), 'appears twice'],
    ['a bad policy', JSON.stringify({ format: 1, revision: 1, services: [{ ...web, rackPolicy: 'nearest' }] }), 'rackPolicy'],
  ])('refuses a file that is %s with a logged error', async (_what, text, problem) => {
    writeFileSync(stateFilePath(dir), text);
    expect(decodeState(text)).toEqual({ problem: expect.stringContaining(problem) });
    const { log, lines } = capture();
    expect(await readStateFile(dir, log)).toBeUndefined();
    const errors = lines.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(String(errors[0].msg)).toContain(problem);
  });

  it('an unreadable file is an error in the log, not a crash', async () => {
    // a directory where the file should be: read fails with EISDIR even for root
    rmSync(stateFilePath(dir), { force: true });
    mkdirSync(stateFilePath(dir));
    const { log, lines } = capture();
    expect(await readStateFile(dir, log)).toBeUndefined();
    expect(lines.filter((l) => l.level === 50)).toHaveLength(1);
  });

  it('encodes services sorted by name, so equal states give equal files', () => {
    const a = { ...web, name: 'a' };
    const b = { ...web, name: 'b' };
    const at = new Date(0);
    expect(encodeState(state(1, b, a), at)).toBe(encodeState(state(1, a, b), at));
  });

  it('the saver writes the newest state, one write at a time, and logs a failed write', async () => {
    const { log, lines } = capture();
    const saver = stateSaver(dir, log);
    for (let r = 1; r <= 20; r++) saver.save(state(r, web));
    await saver.flush();
    expect(JSON.parse(readFileSync(stateFilePath(dir), 'utf8')).revision).toBe(20);

    const gone = join(dir, 'gone');
    const broken = stateSaver(gone, log);
    broken.save(state(21, web));
    await broken.flush();
    expect(lines.filter((l) => l.level === 50 && l.msg === 'cannot save the service state')).toHaveLength(1);
  });
});
