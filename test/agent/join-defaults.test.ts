// The join command with defaults, in a netns lab: `weft controller` with no
// address flags in the lab's controller namespace, `weft token create` there,
// and its printed line run as it is on a host (plus only what keeps the test
// off the machine's own files: host name, state dir, CNI socket). The host
// must become registered. A --server the controller's certificate does not
// name must make the agent exit quickly, non-zero, naming --advertise; and
// the controller restarted with that --advertise must then accept it.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caCertHash } from '../../controller/pki';
import { uniqueName } from '../helpers/names';
import { GiveUp, waitFor } from '../helpers/wait';
import { createLab, type Lab, type LabHost, type LabProcess } from '../lab/lab';
import { ipJson } from '../lab/run';
import { ROOT, WEFT, cleanEnv, requireBuild, tail } from '../e2e/cluster';
import { readJsonLog } from '../e2e/traffic';

describe('joining with the printed command and default flags', () => {
  let lab: Lab;
  let tmp: string;
  let dataDir: string;
  let controller: LabProcess;
  let joinLine = '';

  const startController = async (extra: string[] = []) => {
    const log = join(tmp, `controller-${Date.now()}.log`);
    const p = lab.spawn(lab.controller!.netns, process.execPath, [WEFT, 'controller', '--data-dir', dataDir, ...extra], { logFile: log, cwd: ROOT, env: cleanEnv() });
    await waitFor('the controller to listen', () => {
      if (p.exited) throw new GiveUp(`controller exited:\n${tail(log)}`);
      return readJsonLog(log).some((l) => l.msg === 'controller listening');
    }, 30_000);
    return p;
  };

  /** weft in the controller's namespace, as an operator there runs it. */
  const onController = (args: string[]) => lab.exec(lab.controller!.netns, process.execPath, [WEFT, ...args], { env: cleanEnv() });

  /** A printed `weft agent ...` line as argv for this host: `weft` is the built bundle; the host's own name and paths appended. */
  const agentArgv = (line: string, h: LabHost) => {
    const words = line.trim().split(/\s+/);
    expect(words.slice(0, 2)).toEqual(['weft', 'agent']);
    const dir = join(tmp, h.name);
    return [
      WEFT, ...words.slice(1),
      '--host-name', h.name, '--state-dir', join(dir, 'state'), '--cni-socket', join(dir, 'agent.sock'), '--log-level', 'debug',
    ];
  };

  const hostsRegistered = () => JSON.parse(onController(['status', '--json', '--data-dir', dataDir]).stdout).hosts as number;

  beforeAll(async () => {
    requireBuild();
    tmp = mkdtempSync(join(tmpdir(), 'weft-join-defaults-'));
    dataDir = join(tmp, 'controller');
    lab = await createLab({ name: uniqueName('jn'), datacenters: [{ name: 'dc1', racks: [{ name: 'a', hosts: ['h1', 'h2'] }] }], controller: true });
    controller = await startController();
  }, 90_000);

  afterAll(async () => {
    await lab?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }, 30_000);

  it('token create prints one line naming the address hosts reach, and that line joins a host as it is', async () => {
    const r = onController(['token', 'create', '--data-dir', dataDir]);
    joinLine = r.stdout;
    const pin = caCertHash(readFileSync(join(dataDir, 'ca.crt'), 'utf8'));
    // the controller's address in its namespace (the interface of its default route), never its hostname
    expect(joinLine).toMatch(new RegExp(`^weft agent --server ${lab.controller!.ip.replace(/\./g, '\\.')}:7443 --token [a-z0-9]{6}\\.[a-z0-9]{16} --ca-cert-hash ${pin}\\n$`));
    expect(r.stderr).toMatch(/^token [a-z0-9]{6} expires /);

    const h1 = lab.host('h1');
    const log = join(tmp, 'h1-agent.log');
    const t0 = Date.now();
    const agent = lab.spawn(h1.netns, process.execPath, agentArgv(joinLine, h1), { logFile: log, cwd: ROOT, env: cleanEnv() });
    await waitFor('h1 to register', () => {
      if (agent.exited) throw new GiveUp(`agent on h1 exited:\n${tail(log)}`);
      return readJsonLog(log).some((l) => l.msg === 'host registered');
    }, 30_000);
    console.log(`join with the printed command: registered after ${Date.now() - t0} ms`);
    expect(readJsonLog(log).find((l) => l.msg === 'weft agent starting')).toMatchObject({ underlayIp: h1.underlayIp, server: `${lab.controller!.ip}:7443` });
    expect(hostsRegistered()).toBe(1);
    await agent.stop();
  }, 60_000);

  it('an agent pointed at an address the certificate lacks exits non-zero at once, naming --advertise; with it, the same line joins', async () => {
    // A second address of the controller, added after its certificate was made.
    const ctl = lab.controller!;
    const dev = ipJson<Array<{ ifname: string; addr_info: Array<{ local: string }> }>>(ctl.netns, ['addr', 'show'])
      .find((l) => l.addr_info.some((a) => a.local === ctl.ip))!.ifname;
    const other = ctl.ip.replace(/\.\d+$/, '.11');
    lab.exec(ctl.netns, 'ip', ['addr', 'add', `${other}/24`, 'dev', dev]);
    const line = joinLine.replace(`--server ${ctl.ip}:7443`, `--server ${other}:7443`);
    expect(line).toContain(`--server ${other}:7443 `);

    const h2 = lab.host('h2');
    const t0 = Date.now();
    const r = lab.exec(h2.netns, process.execPath, agentArgv(line, h2), { check: false, timeoutMs: 30_000, env: cleanEnv() });
    const took = Date.now() - t0;
    console.log(`agent with a --server outside the certificate: exit ${r.status} after ${took} ms: ${r.stderr.trim()}`);
    expect(r.status, r.stderr).toBe(1);
    expect(took).toBeLessThan(15_000);
    expect(r.stderr).toContain(`weft agent: cannot join through ${other}:7443: the controller's certificate names `);
    expect(r.stderr).toContain(`${ctl.ip}, `);
    expect(r.stderr).toContain(`but not '${other}'; use one of those in --server or restart the controller with --advertise ${other}\n`);
    expect(existsSync(join(tmp, 'h2', 'state', 'host.crt'))).toBe(false);

    // A --server that resolves to this host's loopback: refused before any connection, naming --server.
    const lo = lab.exec(h2.netns, process.execPath, agentArgv(line.replace(`--server ${other}:7443`, '--server localhost:7443'), h2), { check: false, timeoutMs: 30_000, env: cleanEnv() });
    expect(lo.status, lo.stderr).toBe(2);
    expect(lo.stderr).toMatch(/--server localhost resolves to (127\.0\.0\.1|::1), a loopback address of this machine.*give --server the controller's address/);

    // Do what the message says: the controller again, with --advertise. The same line now joins.
    await controller.stop();
    controller = await startController(['--advertise', other]);
    const log = join(tmp, 'h2-agent.log');
    const agent = lab.spawn(h2.netns, process.execPath, agentArgv(line, h2), { logFile: log, cwd: ROOT, env: cleanEnv() });
    await waitFor('h2 to register', () => {
      if (agent.exited) throw new GiveUp(`agent on h2 exited:\n${tail(log)}`);
      return readJsonLog(log).some((l) => l.msg === 'host registered');
    }, 30_000);
    expect(hostsRegistered(), tail(log)).toBe(2);
    // token create now names the advertised address
    expect(onController(['token', 'create', '--data-dir', dataDir]).stdout).toMatch(new RegExp(`^weft agent --server ${other.replace(/\./g, '\\.')}:7443 `));
    await agent.stop();
  }, 90_000);
});
