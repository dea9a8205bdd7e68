// The conflist labels podman shows (args.podman_labels): install-cni writes
// the network and records the file for its agent; the agent writes this
// host's subnet and gateway, rewrites them when the lease changes, removes
// them when the host has none, leaves right files and other agents' files
// alone; install-cni run again keeps what the agent wrote.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { conflistRecordPath, recordedConflists, updateConflistLabels } from '../../cni-plugin/cni/conflist-labels';
import { installCni, parseInstallCniArgs } from '../../cni-plugin/install-cni';

let dir: string;
let socket: string;
let confDir: string;
let shim: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-labels-'));
  socket = join(dir, 'run', 'agent.sock');
  confDir = join(dir, 'net.d');
  shim = join(dir, 'weft-cni');
  // an ELF header is all install-cni checks of the binary
  writeFileSync(shim, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 0, 0]));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const install = (network: string, name: string, priority: number, extra: string[] = []) =>
  installCni(parseInstallCniArgs(['--bin-dir', join(dir, 'bin'), '--conf-dir', confDir, '--network', network, '--name', name, '--socket', socket, '--source', shim, '--priority', String(priority), ...extra], {}));
const labels = (path: string) => (JSON.parse(readFileSync(path, 'utf8')) as { args: { podman_labels: Record<string, string> } }).args.podman_labels;

describe('conflist labels', () => {
  it('install-cni names the network and records the conflist for its agent; the agent adds its subnet and gateway, and follows a lease change', () => {
    const r = install('default', 'weft', 10);
    expect(labels(r.conflist.path)).toEqual({ 'weft.network': 'default' });
    expect(recordedConflists(socket)).toEqual([r.conflist.path]);
    expect(statSync(conflistRecordPath(socket)).isFile()).toBe(true);

    let lease: Record<string, { subnet: string; gateway: string }> = { default: { subnet: '10.244.3.0/24', gateway: '10.244.3.1' } };
    const update = () => updateConflistLabels(socket, (n) => lease[n], []);
    expect(update()).toEqual({ written: [r.conflist.path], failed: [] });
    expect(labels(r.conflist.path)).toEqual({ 'weft.network': 'default', 'weft.subnet': '10.244.3.0/24', 'weft.gateway': '10.244.3.1' });
    expect(statSync(r.conflist.path).mode & 0o777).toBe(0o644);
    // nothing changed: nothing written
    const mtime = statSync(r.conflist.path).mtimeMs;
    expect(update().written).toEqual([]);
    expect(statSync(r.conflist.path).mtimeMs).toBe(mtime);

    lease = { default: { subnet: '10.244.9.0/24', gateway: '10.244.9.1' } };
    expect(update().written).toEqual([r.conflist.path]);
    expect(labels(r.conflist.path)['weft.subnet']).toBe('10.244.9.0/24');
    // install-cni again: the agent's labels stay, and the file is unchanged
    expect(install('default', 'weft', 10).conflist.changed).toBe(false);
    // the host lost its subnet (network deleted): the labels say nothing rather than something stale
    lease = {};
    update();
    expect(labels(r.conflist.path)).toEqual({ 'weft.network': 'default' });
  });

  it('touches only weft conflists of its own socket, found in the recorded list or in a scanned dir', () => {
    const own = install('default', 'weft', 10).conflist.path;
    const other = join(confDir, '30-other.conflist');
    const foreign = { cniVersion: '1.0.0', name: 'other', plugins: [{ type: 'weft', network: 'default', agentSocket: '/run/another/agent.sock' }] };
    writeFileSync(other, JSON.stringify(foreign));
    const bridge = join(confDir, '87-podman-bridge.conflist');
    writeFileSync(bridge, JSON.stringify({ cniVersion: '0.4.0', name: 'podman', plugins: [{ type: 'bridge' }] }));
    // a conflist install-cni did not record, in a scanned dir
    const loose = join(confDir, '40-loose.conflist');
    writeFileSync(loose, JSON.stringify({ cniVersion: '1.0.0', name: 'loose', plugins: [{ type: 'weft', network: 'blue', agentSocket: socket }] }));
    const res = updateConflistLabels(socket, (n) => ({ default: { subnet: '10.244.3.0/24', gateway: '10.244.3.1' }, blue: { subnet: '10.245.7.0/24', gateway: '10.245.7.1' } })[n], [confDir]);
    expect(res.written.sort()).toEqual([own, loose].sort());
    expect(labels(loose)).toEqual({ 'weft.network': 'blue', 'weft.subnet': '10.245.7.0/24', 'weft.gateway': '10.245.7.1' });
    expect(JSON.parse(readFileSync(other, 'utf8'))).toEqual(foreign);
    expect(JSON.parse(readFileSync(bridge, 'utf8')).args).toBeUndefined();
  });

  it('a network installed again under a new priority keeps its labels and its record moves to the new file', () => {
    const first = install('blue', 'weft-blue', 20).conflist.path;
    updateConflistLabels(socket, () => ({ subnet: '10.245.7.0/24', gateway: '10.245.7.1' }), []);
    const second = install('blue', 'weft-blue', 30);
    expect(second.removed).toEqual([first]);
    expect(labels(second.conflist.path)['weft.subnet']).toBe('10.245.7.0/24');
    expect(recordedConflists(socket)).toEqual([second.conflist.path]);
  });
});
