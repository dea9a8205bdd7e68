// The files that deploy weft on machines, checked with the tools that read
// them: the Vagrantfile with Debian's vagrant, the provisioning scripts with
// shellcheck, the systemd units with systemd-analyze. Nothing is booted (no
// hypervisor in CI): these catch what would otherwise fail only at
// `vagrant up` or `systemctl start`.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../controller/daemon-process';
import { AGENT_OPTIONS } from '../../cni-plugin/agent/config';
import { CONTROLLER_OPTIONS } from '../../controller/daemon/config';
import { INGRESS_OPTIONS } from '../../ingress/config';
import { LAB_UNDERLAY, planLab, type LabSpec } from '../lab/plan';

const VAGRANT_DIR = join(ROOT, 'vagrant');
const PROVISION_DIR = join(VAGRANT_DIR, 'provision');
const UNIT_DIR = join(VAGRANT_DIR, 'systemd');
const UNITS = ['weft-controller.service', 'weft-agent.service', 'weft-ingress.service'];

const scratch = mkdtempSync(join(tmpdir(), 'wtvagrant-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}`, stderr: r.stderr };
}

/** `Key=value` lines of a unit, in order (comments and sections left out). */
function directives(unit: string): Array<[string, string]> {
  return readFileSync(join(UNIT_DIR, unit), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

describe('vagrant/', () => {
  it('vagrant validate accepts the Vagrantfile, offline and without touching the tree', () => {
    // Its own home (no plugins, no boxes: validate never downloads one) and
    // machine-state dir, and no version check, so it runs the same as root
    // in CI, offline, and leaves no vagrant/.vagrant behind. Provider blocks
    // are skipped (-p): Debian packages no VirtualBox to check them against.
    const env = {
      ...process.env,
      VAGRANT_HOME: join(scratch, 'home'),
      VAGRANT_DOTFILE_PATH: join(scratch, 'dotfile'),
      VAGRANT_CHECKPOINT_DISABLE: '1',
    };
    const r = run('vagrant', ['validate', '--ignore-provider'], { cwd: VAGRANT_DIR, env });
    expect(r.out, r.out).toContain('Vagrantfile validated successfully');
    expect(r.status, r.out).toBe(0);
  }, 120_000); // Ruby's start-up: ~7 s idle, over 20 s on a busy CI machine

  it("has the lab's topology: every machine's address, segment and provisioning follow the lab's plan of topology.json", () => {
    // The Vagrantfile, loaded by Ruby with a stand-in for Vagrant that
    // records each machine's private networks and provisioners.
    type Net = { type: string; ip?: string; netmask?: string; virtualbox__intnet?: string };
    type Machine = { networks: Net[]; provisioners: Array<{ name: string; args?: string[] }> };
    const r = run('ruby', [join(ROOT, 'test', 'vagrant', 'load-vagrantfile.rb'), join(VAGRANT_DIR, 'Vagrantfile')]);
    expect(r.status, r.out).toBe(0);
    const machines = JSON.parse(r.out.slice(r.out.indexOf('{'))) as Record<string, Machine>;
    const plan = planLab(JSON.parse(readFileSync(join(VAGRANT_DIR, 'topology.json'), 'utf8')) as LabSpec);

    const mask = (len: number) => [0, 8, 16, 24].map((s) => (len >= s + 8 ? 255 : len <= s ? 0 : 256 - 2 ** (s + 8 - len))).join('.');
    /** The segment (internal network) on which `machine` has `ip`/`len`. */
    const segment = (machine: string, ip: string, len: number): string => {
      const n = machines[machine]?.networks.find((x) => x.type === 'private_network' && x.ip === ip);
      expect(n, `${machine} has ${ip}`).toBeDefined();
      expect(n!.netmask, `${machine} ${ip}`).toBe(mask(len));
      return n!.virtualbox__intnet!;
    };
    const args = (machine: string, provisioner: string) => machines[machine].provisioners.find((p) => p.name === provisioner)?.args;

    expect(Object.keys(machines).sort()).toEqual(
      ['controller', 'wan', ...plan.routers.map((x) => `r-${x.datacenter}`), ...plan.hosts.map((h) => h.name)].sort(),
    );
    for (const [name, m] of Object.entries(machines)) {
      const nets = m.networks.filter((n) => n.type === 'private_network').map((n) => n.virtualbox__intnet);
      expect(new Set(nets).size, `${name}: one address per segment`).toBe(nets.length);
    }
    for (const h of plan.hosts) {
      expect(segment(h.name, h.underlayIp, h.prefixLen), `${h.name} shares its rack's segment with the rack's gateway`)
        .toBe(segment(`r-${h.datacenter}`, h.gateway, h.prefixLen));
      expect(args(h.name, 'network')).toEqual([`${LAB_UNDERLAY} via ${h.gateway}`]);
      expect(args(h.name, 'agent')).toEqual([h.rack, h.datacenter]);
    }
    for (const x of plan.routers) {
      expect(segment(`r-${x.datacenter}`, x.ip, x.prefixLen)).toBe(segment('wan', x.peerIp, x.prefixLen));
      expect(args(`r-${x.datacenter}`, 'network')).toEqual(['--forward', `${LAB_UNDERLAY} via ${x.peerIp}`]);
    }
    expect(args('wan', 'network')).toEqual(['--forward', ...plan.routers.flatMap((x) => x.racks.map((k) => `${k.subnet} via ${x.ip}`))]);
    const c = plan.controller!;
    expect(segment('controller', c.ip, c.prefixLen)).toBe(segment('wan', c.gateway, c.prefixLen));
    expect(args('controller', 'controller')).toEqual([c.ip]);
    // an ingress host exists and runs an agent too
    const edges = Object.keys(machines).filter((m) => args(m, 'ingress'));
    expect(edges.length).toBeGreaterThan(0);
    for (const e of edges) expect(args(e, 'agent')).toBeDefined();
    expect(new Set(plan.hosts.map((h) => h.datacenter)).size).toBeGreaterThanOrEqual(2);
  });

  it('shellcheck finds nothing in the provisioning scripts', () => {
    const scripts = readdirSync(PROVISION_DIR).filter((f) => f.endsWith('.sh'));
    expect(scripts).toEqual(expect.arrayContaining(['network.sh', 'weft.sh', 'controller.sh', 'agent.sh', 'ingress.sh']));
    // -x follows the `source` of join.sh; -S style reports everything.
    const r = run('shellcheck', ['-x', '-S', 'style', ...scripts], { cwd: PROVISION_DIR });
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('the provisioning scripts set only variables weft reads', () => {
    // /etc/default/weft-* hold WEFT_* settings; a misspelt one would be ignored silently.
    const known = new Set([...CONTROLLER_OPTIONS, ...AGENT_OPTIONS, ...INGRESS_OPTIONS].map((o) => o.env));
    const written = new Set<string>();
    for (const f of readdirSync(PROVISION_DIR)) {
      for (const m of readFileSync(join(PROVISION_DIR, f), 'utf8').matchAll(/\b(WEFT_[A-Z0-9_]+)=/g)) written.add(m[1]);
    }
    expect(written.size).toBeGreaterThan(0);
    expect([...written].filter((v) => !known.has(v))).toEqual([]);
  });
});

describe('vagrant/systemd/', () => {
  it('systemd-analyze verify finds no error and no warning in the units', () => {
    // verify refuses a unit whose ExecStart binary does not exist, and the
    // units name a bare `weft`, which systemd looks up in its fixed search
    // path (/usr/bin or /usr/local/bin, wherever `npm link` put it). So the
    // copies checked here start dist/weft.mjs by its absolute path instead:
    // the build this run tested. Unknown keys and bad values are only
    // warnings to verify (exit 0), so any output fails the test.
    const dir = join(scratch, 'units');
    mkdirSync(dir);
    for (const u of UNITS) {
      const text = readFileSync(join(UNIT_DIR, u), 'utf8');
      writeFileSync(join(dir, u), text.replace(/^ExecStart=weft /m, `ExecStart=${join(ROOT, 'dist', 'weft.mjs')} `));
    }
    const r = run('systemd-analyze', ['verify', ...UNITS.map((u) => join(dir, u))]);
    expect(r.out).toBe('');
    expect(r.status).toBe(0);

    // systemd's own exposure score (0 best, 10 worst), from the unit files
    // alone: each stays "OK" (below 5), so loosening one shows here.
    for (const u of UNITS) {
      const s = run('systemd-analyze', ['security', '--offline=true', join(dir, u)], { cwd: dir });
      const score = /Overall exposure level for \S+: ([\d.]+)/.exec(s.out)?.[1];
      expect(Number(score), `${u}: ${s.out.split('\n').filter((l) => l.includes('✗')).join('\n')}`).toBeLessThan(5);
    }
  });

  it('systemd-analyze verify reports a bad value (the check is live)', () => {
    const dir = join(scratch, 'bad');
    mkdirSync(dir);
    copyFileSync(join(UNIT_DIR, 'weft-ingress.service'), join(dir, 'weft-ingress.service'));
    const unit = join(dir, 'weft-ingress.service');
    writeFileSync(unit, readFileSync(unit, 'utf8').replace('RestartSec=2s', 'RestartSec=2parsecs'));
    expect(run('systemd-analyze', ['verify', unit]).out).toMatch(/2parsecs/);
  });

  it.each([
    ['weft-controller.service', 'controller', ''],
    ['weft-agent.service', 'agent', 'CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_ADMIN CAP_SYS_PTRACE'],
    ['weft-ingress.service', 'ingress', 'CAP_NET_BIND_SERVICE CAP_NET_ADMIN'],
  ])('%s runs weft %s, hardened, with only the capabilities it needs', (unit, role, caps) => {
    const d = new Map(directives(unit));
    expect(d.get('ExecStart')).toMatch(new RegExp(`weft\\b.* ${role}'?$`));
    expect(d.get('EnvironmentFile')).toBe(`-/etc/default/weft-${role}`);
    expect(d.get('CapabilityBoundingSet')).toBe(caps);
    expect(d.get('AmbientCapabilities')).toBe('');
    for (const [k, v] of [['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['NoNewPrivileges', 'yes'], ['Restart', 'on-failure']]) {
      expect(d.get(k), `${unit}: ${k}`).toBe(v);
    }
    // With ProtectSystem=strict it writes only its state (and, for the agent, runtime) dirs.
    expect(d.get('StateDirectory')).toBe(role === 'controller' ? 'weft' : `weft/${role}`);
  });
});
