// Kernel features weft needs, found without loading anything: a device of
// the kind that already exists, a loaded module (/proc/modules,
// /sys/module), the kernel's build configuration (/proc/config.gz or
// /boot/config-<release>), and the module lists under /lib/modules. The
// agent's preflight goes further and creates a probe device of each kind
// (which may load a module); the doctor only reads, so it can run beside a
// live agent and on a host where loading modules is not wanted.
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { delimiter, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fail, pass, warn, type Finding } from './finding';
import type { ProbeResult } from './kernel-probe';

export type Feature = {
  check: string;
  module: string;
  config: string;
  /** Link kind whose existence proves the feature (vxlan, bridge, veth, wireguard). */
  linkKind?: string;
  what: string;
};

export const FEATURES: readonly Feature[] = [
  { check: 'vxlan', module: 'vxlan', config: 'CONFIG_VXLAN', linkKind: 'vxlan', what: 'the overlay between hosts' },
  { check: 'bridge', module: 'bridge', config: 'CONFIG_BRIDGE', linkKind: 'bridge', what: "each network's bridge" },
  { check: 'veth', module: 'veth', config: 'CONFIG_VETH', linkKind: 'veth', what: 'container interfaces' },
  { check: 'nf_tables', module: 'nf_tables', config: 'CONFIG_NF_TABLES', what: "iptables-nft and the ingress's L4 path" },
  { check: 'conntrack', module: 'nf_conntrack', config: 'CONFIG_NF_CONNTRACK', what: 'masquerading and stateful rules' },
];

export const WIREGUARD: Feature = { check: 'wireguard', module: 'wireguard', config: 'CONFIG_WIREGUARD', linkKind: 'wireguard', what: 'tunnels between datacenters' };

/** What the host shows about its kernel; a source that could not be read is undefined, not empty. */
export type KernelFacts = {
  release: string;
  /** Kinds of the links that exist now, with one name each. */
  linkKinds: ReadonlyMap<string, string>;
  /** Names in /proc/modules. */
  loaded?: ReadonlySet<string>;
  /** Names under /sys/module (loaded modules, and built-in ones that have parameters). */
  sysModules?: ReadonlySet<string>;
  /** CONFIG_* -> 'y' | 'm' from the kernel's build configuration; absent options are "not set". */
  config?: ReadonlyMap<string, string>;
  configSource?: string;
  /** Module names from modules.builtin and modules.dep. */
  builtin?: ReadonlySet<string>;
  loadable?: ReadonlySet<string>;
  /** Path of the wireguard-go binary, if on PATH. */
  wireguardGo?: string;
  /** Device kinds tried in a throwaway namespace, when nothing else told. */
  probed?: ReadonlyMap<string, ProbeResult>;
};

type Evidence = { present: true; how: string } | { present: false; how: string } | undefined;

/** What the facts say about one feature; undefined when no source tells. */
export function evidenceFor(f: Feature, k: KernelFacts): Evidence {
  const dev = f.linkKind ? k.linkKinds.get(f.linkKind) : undefined;
  if (dev) return { present: true, how: `in use (${dev} is a ${f.linkKind} device)` };
  if (k.loaded?.has(f.module)) return { present: true, how: `module ${f.module} loaded` };
  const cfg = k.config?.get(f.config);
  if (cfg === 'y' || k.builtin?.has(f.module)) return { present: true, how: `built into kernel ${k.release}` };
  if (k.sysModules?.has(f.module)) return { present: true, how: `module ${f.module} present (/sys/module)` };
  if (cfg === 'm' || k.loadable?.has(f.module)) return { present: true, how: `module ${f.module} available, not loaded yet (the kernel loads it on first use)` };
  if (k.config) return { present: false, how: `kernel ${k.release} is built without ${f.config} (${k.configSource ?? 'kernel config'})` };
  if (k.loadable) return { present: false, how: `no module ${f.module} for kernel ${k.release} and it is not built in` };
  const probe = f.linkKind ? k.probed?.get(f.linkKind) : undefined;
  if (probe?.ok) return { present: true, how: `a ${f.linkKind} device could be created (probed in a throwaway namespace)` };
  if (probe) return { present: false, how: `the kernel refused a ${f.linkKind} device in a throwaway namespace (${probe.error})` };
  return undefined;
}

export function judgeKernel(k: KernelFacts): Finding[] {
  const out: Finding[] = [];
  for (const f of FEATURES) {
    const e = evidenceFor(f, k);
    if (!e) {
      out.push(warn('kernel', f.check, `cannot tell whether kernel ${k.release} has ${f.check} (no /proc/config.gz, /boot/config-${k.release} or /lib/modules/${k.release}${f.linkKind ? ', and no probe device' : ''}); weft needs it for ${f.what}`,
        `start the agent: its preflight creates a probe device and says what is missing (or look for ${f.config} in the kernel's config)`));
    } else if (e.present) out.push(pass('kernel', f.check, e.how));
    else {
      out.push(fail('kernel', f.check, `${e.how}: weft needs it for ${f.what}`,
        `modprobe ${f.module} (on some distributions it is in a linux-modules-extra package), or use a kernel built with ${f.config}`));
    }
  }
  const wg = evidenceFor(WIREGUARD, k);
  if (wg?.present) out.push(pass('kernel', 'wireguard', `kernel WireGuard: ${wg.how}`));
  else if (k.wireguardGo) out.push(pass('kernel', 'wireguard', `no kernel WireGuard${wg ? ` (${wg.how})` : ''}; wireguard-go at ${k.wireguardGo} serves instead (userspace, slower)`));
  else {
    out.push(warn('kernel', 'wireguard', `neither kernel WireGuard${wg ? ` (${wg.how})` : ' (cannot tell)'} nor wireguard-go on PATH: this host cannot carry ${WIREGUARD.what}`,
      'modprobe wireguard (kernels from 5.6 have it), or install wireguard-go (apt-get install wireguard-go); hosts of one datacenter without gateways do not need it'));
  }
  return out;
}

// ---- reading the host ----

function readSet(read: () => Iterable<string>): Set<string> | undefined {
  try {
    return new Set(read());
  } catch {
    return undefined;
  }
}

/** "CONFIG_VXLAN=m" lines into a map; "# CONFIG_X is not set" lines are left out, as absent options are. */
export function parseKernelConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(CONFIG_[A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

/** Module names from a modules.builtin or modules.dep listing ("kernel/drivers/net/vxlan/vxlan.ko.xz: ..."). */
export function moduleNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const path = line.split(':')[0].trim();
    const m = /([^/]+)\.ko(\.[a-z]+)?$/.exec(path);
    // modprobe treats "-" and "_" in module names alike; the kernel names them with "_"
    if (m) out.add(m[1].replace(/-/g, '_'));
  }
  return out;
}

function findOnPath(bin: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of [...path.split(delimiter), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!dir) continue;
    const p = join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

export function readKernelFacts(linkKinds: ReadonlyMap<string, string>): KernelFacts {
  const rel = release();
  const facts: KernelFacts = { release: rel, linkKinds };
  const loaded = readSet(() => readFileSync('/proc/modules', 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[0]));
  if (loaded) facts.loaded = loaded;
  const sys = readSet(() => readdirSync('/sys/module'));
  if (sys) facts.sysModules = sys;
  for (const [source, read] of [
    ['/proc/config.gz', () => gunzipSync(readFileSync('/proc/config.gz')).toString('utf8')],
    [`/boot/config-${rel}`, () => readFileSync(`/boot/config-${rel}`, 'utf8')],
  ] as const) {
    try {
      facts.config = parseKernelConfig(read());
      facts.configSource = source;
      break;
    } catch {
      /* try the next */
    }
  }
  const dir = `/lib/modules/${rel}`;
  if (existsSync(dir)) {
    const builtin = readSet(() => moduleNames(readFileSync(join(dir, 'modules.builtin'), 'utf8')));
    if (builtin) facts.builtin = builtin;
    const dep = readSet(() => moduleNames(readFileSync(join(dir, 'modules.dep'), 'utf8')));
    if (dep) facts.loadable = dep;
  }
  const wgGo = findOnPath('wireguard-go');
  if (wgGo) facts.wireguardGo = wgGo;
  return facts;
}
