// The L4 kernel path end to end: a client namespace sends TCP and UDP to the
// ingress namespace, where createL4Programmer runs (its netns option), and
// nf_tables DNATs the flows to echo servers in backend namespaces.
import { afterEach, describe, expect, it } from 'vitest';
import { captureLogger } from '../../helpers/log';
import { waitFor } from '../../helpers/wait';
import { InvalidArgumentError } from '../../../controller/common/errors';
import { maglevRebalance, maglevSize, maglevTable } from '../../../ingress/balance/maglev';
import { createL4Programmer, type L4Programmer, type L4Service } from '../../../ingress/l4';
import { HASH_SEED, MASQ_MARK, ruleComment } from '../../../ingress/l4/render';
import { openNftTable } from '../../../dataplane/nftables/table';
import { NFPROTO_IPV4 } from '../../../dataplane/nftables/wire';
import { uniqueName } from '../../helpers/names';
import { answeredBy, buildWorld, nsRun, CLIENT_IP, INGRESS_IP, PORT, type World } from './topology';

let world: World | undefined;
let programmers: L4Programmer[] = [];

afterEach(() => {
  for (const p of programmers) p.close();
  programmers = [];
  world?.teardown();
  world = undefined;
});

// no audit timer unless a test asks for one: what each sync lists is then the sync's own doing
function programmer(w: World, table: string, sourceNat: 'masquerade' | 'none' = 'masquerade', addresses: string[] = [], o: { auditPeriodMs?: number; logger?: ReturnType<typeof captureLogger>['logger'] } = {}): L4Programmer {
  const p = createL4Programmer({ table, addresses, sourceNat, logger: o.logger ?? captureLogger().logger, netns: w.ingress, auditPeriodMs: o.auditPeriodMs ?? 0 });
  programmers.push(p);
  return p;
}

function services(w: World, which = w.backends.map((_, i) => i)): L4Service[] {
  const eps = which.map((i) => w.backends[i].endpoint);
  return [
    { name: 'web', port: 80, protocol: 'tcp', affinity: 'none', endpoints: eps },
    { name: 'dns', port: 53, protocol: 'udp', affinity: 'none', endpoints: eps },
  ];
}

function gen(w: World): number {
  const t = openNftTable({ name: 'unused', family: NFPROTO_IPV4, netns: w.ingress });
  try {
    return t.gen();
  } finally {
    t.close();
  }
}

function listTable(w: World, table: string): string {
  return nsRun(w.ingress, 'nft', ['list', 'table', 'ip', table]);
}

type MapElem = [{ concat: [number, number] }, { concat: [string, number] }];

/** bucket -> "ip:port" of one service port's group in its class map, as nft lists it. */
function mapContents(w: World, table: string, map: string, port: number): Map<number, string> {
  const j = JSON.parse(nsRun(w.ingress, 'nft', ['-j', 'list', 'map', 'ip', table, map])) as { nftables: Array<{ map?: { elem?: MapElem[] } }> };
  const m = j.nftables.find((x) => x.map)!.map!;
  return new Map((m.elem ?? []).filter(([k]) => k.concat[0] === port).map(([k, v]) => [k.concat[1], `${v.concat[0]}:${v.concat[1]}`]));
}

/** The class map a service port's vmap element sends it to. */
function backendMapName(w: World, table: string, proto: string, port: number): string {
  const m = new RegExp(`\\b${port} : goto lb_(${proto}_\\d+_(?:ip|flow)_\\d+)\\b`).exec(listTable(w, table));
  if (!m) throw new Error(`no class chain for ${proto}/${port}`);
  return `be_${m[1]}`;
}

/** TCP connections until each expected backend answered at least once. */
async function tcpReaches(w: World, host: string, port: number, expected: string[]): Promise<Set<string>> {
  const seen = new Set<string>();
  await waitFor(`TCP ${host}:${port} to reach ${expected.join(', ')}`, async () => {
    const r = await w.cli.tcp(host, port);
    const by = answeredBy(r);
    if (by) seen.add(by);
    return expected.every((e) => seen.has(e));
  }, 20_000, 10);
  return seen;
}

describe('L4 kernel path', () => {
  it('DNATs TCP and UDP to every backend, masquerading so replies come back through the ingress', async () => {
    const w = (world = await buildWorld(3));
    const table = uniqueName('l4t');
    const p = programmer(w, table);
    const r = await p.sync(services(w));
    expect(r.changed).toBeGreaterThan(0);
    const all = w.backends.map((b) => b.ip);
    await tcpReaches(w, INGRESS_IP, 80, all);
    // masquerade: the backend saw the ingress's address on its side, not the client
    const one = await w.cli.tcp(INGRESS_IP, 80);
    const [by, peer] = one.reply!.split(' ');
    expect(peer).toBe(by.replace(/\.2$/, '.1'));
    const udpSeen = new Set<string>();
    for (let sport = 40000; sport < 40030; sport++) {
      const u = await w.cli.udp(INGRESS_IP, 53, sport);
      expect(u.error).toBeUndefined();
      udpSeen.add(answeredBy(u)!);
    }
    expect(udpSeen.size).toBeGreaterThan(1);
  });

  it('changes nothing when synced again or restarted: zero changes and the generation does not move', async () => {
    const w = (world = await buildWorld(2));
    const table = uniqueName('l4t');
    const p = programmer(w, table);
    await p.sync(services(w));
    const g = gen(w);
    const before = listTable(w, table);
    expect((await p.sync(services(w))).changed).toBe(0);
    // a restarted ingress adopts the table it finds
    p.close();
    const again = programmer(w, table);
    const r = await again.sync(services(w));
    expect(r.changed).toBe(0);
    expect(r.elements).toBeGreaterThan(200);
    expect(gen(w)).toBe(g);
    expect(listTable(w, table)).toBe(before);
  });

  it('removing a backend remaps exactly its buckets, the rest balanced within one slot; other connections keep working', async () => {
    const w = (world = await buildWorld(3));
    const table = uniqueName('l4t');
    const p = programmer(w, table);
    await p.sync(services(w));
    const map = backendMapName(w, table, 'tcp', 80);
    const size = Number(/_(\d+)_flow_\d+$/.exec(map)![1]);
    const before = mapContents(w, table, map, 80);
    // a new map is the plain Maglev table
    const keys = w.backends.map((b) => b.endpoint.key).sort();
    const expected = maglevTable(keys, size);
    for (let i = 0; i < size; i++) expect(before.get(i)).toBe(keys[expected[i]]);

    // long-lived connections, until one is open to every backend
    const conns = new Map<string, string>();
    for (let i = 0; conns.size < 3 && i < 200; i++) {
      const r = await w.cli.open(`c${i}`, INGRESS_IP, 80);
      const by = answeredBy(r);
      if (by && !conns.has(by)) conns.set(by, `c${i}`);
    }
    expect(conns.size).toBe(3);

    const gone = w.backends[2];
    const r = await p.sync(services(w, [0, 1]));
    const after = mapContents(w, table, map, 80); // same size: the map is kept
    expect(after.size).toBe(size);
    let moved = 0;
    let ownShare = 0;
    const held = new Map<string, number>();
    for (let i = 0; i < size; i++) {
      held.set(after.get(i)!, (held.get(after.get(i)!) ?? 0) + 1);
      if (before.get(i) === gone.endpoint.key) ownShare++;
      else if (before.get(i) !== after.get(i)) moved++;
    }
    expect(ownShare).toBeGreaterThan(size / 3 - 2);
    expect(moved).toBe(0); // no remap beyond the removed backend's own share
    expect([...held.keys()].sort()).toEqual([w.backends[0].endpoint.key, w.backends[1].endpoint.key].sort());
    expect(Math.abs(held.get(w.backends[0].endpoint.key)! - held.get(w.backends[1].endpoint.key)!)).toBeLessThanOrEqual(1);
    // a delete and an add per moved bucket, in the TCP map and the UDP map alike
    expect(r.changed).toBe(4 * ownShare);
    // every connection, including the one to the removed backend (drain), still answers from its backend
    for (const [by, conn] of conns) expect(answeredBy(await w.cli.send(conn))).toBe(by);
    // and new connections go to the two that are left
    const seen = await tcpReaches(w, INGRESS_IP, 80, [w.backends[0].ip, w.backends[1].ip]);
    expect(seen.has(gone.ip)).toBe(false);
  });

  it('a restarted ingress continues from the buckets in the kernel: adopt, then remove a backend, as if it had never restarted', async () => {
    const w = (world = await buildWorld(4));
    const keptTable = uniqueName('l4t');
    const kept = programmer(w, keptTable);
    const restartedTable = uniqueName('l4t');
    const first = programmer(w, restartedTable);
    // the same history on both tables: a backend goes and comes back, so the buckets are no longer a fresh Maglev table
    for (const which of [[0, 1, 2, 3], [0, 1, 3], [0, 1, 2, 3]]) {
      await kept.sync(services(w, which));
      await first.sync(services(w, which));
    }
    first.close();
    const restarted = programmer(w, restartedTable);
    const adopt = await restarted.sync(services(w));
    expect(adopt.changed).toBe(0);
    expect(adopt.listed).toBeGreaterThan(0);
    const map = backendMapName(w, restartedTable, 'tcp', 80);
    const size = Number(/_(\d+)_flow_\d+$/.exec(map)![1]);
    const before = mapContents(w, restartedTable, map, 80);
    await kept.sync(services(w, [0, 2, 3]));
    await restarted.sync(services(w, [0, 2, 3]));
    const a = mapContents(w, restartedTable, map, 80);
    expect(a).toEqual(mapContents(w, keptTable, map, 80));
    // which is the rebalance of what the kernel held
    const left = [0, 2, 3].map((i) => w.backends[i].endpoint.key);
    const want = maglevRebalance(Array.from({ length: size }, (_, i) => before.get(i)), left);
    for (let i = 0; i < size; i++) expect(a.get(i)).toBe(left[want[i]]);
  });

  it('drains TCP but forgets the UDP flows of a removed backend', async () => {
    const w = (world = await buildWorld(2));
    const table = uniqueName('l4t');
    const p = programmer(w, table);
    await p.sync(services(w));
    const gone = w.backends[1];
    let tcpConn: string | undefined;
    for (let i = 0; !tcpConn && i < 100; i++) if (answeredBy(await w.cli.open(`t${i}`, INGRESS_IP, 80)) === gone.ip) tcpConn = `t${i}`;
    expect(tcpConn).toBeDefined();
    let sport: number | undefined;
    for (let s = 41000; !sport && s < 41100; s++) if (answeredBy(await w.cli.udp(INGRESS_IP, 53, s)) === gone.ip) sport = s;
    expect(sport).toBeDefined();
    const ctUdp = () => nsRun(w.ingress, 'conntrack', ['-L', '-p', 'udp', '--reply-src', gone.ip]);
    expect(ctUdp()).toContain(`sport=${sport}`);

    await p.sync(services(w, [0]));
    expect(ctUdp()).not.toContain(`dport=${sport}`);
    expect(ctUdp()).not.toContain('sport=');
    // TCP is left to finish
    expect(nsRun(w.ingress, 'conntrack', ['-L', '-p', 'tcp', '--reply-src', gone.ip])).toContain('ESTABLISHED');
    expect(answeredBy(await w.cli.send(tcpConn!))).toBe(gone.ip);
    // the same UDP client flow now lands on the backend that is left
    expect(answeredBy(await w.cli.udp(INGRESS_IP, 53, sport))).toBe(w.backends[0].ip);
  });

  it("sourceNat none keeps the client's address, on a listen address", async () => {
    const w = (world = await buildWorld(2));
    const table = uniqueName('l4t');
    const p = programmer(w, table, 'none', [INGRESS_IP]);
    await p.sync(services(w));
    expect(listTable(w, table)).not.toContain('masquerade');
    const r = await w.cli.tcp(INGRESS_IP, 80);
    expect(r.reply?.split(' ')[1]).toBe(CLIENT_IP);
    const u = await w.cli.udp(INGRESS_IP, 53);
    expect(u.reply?.split(' ')[1]).toBe(CLIENT_IP);
  });

  it('rejects bad input before sending anything, and leaves the table as it was', async () => {
    const w = (world = await buildWorld(1));
    const table = uniqueName('l4t');
    const p = programmer(w, table);
    await p.sync(services(w));
    const before = listTable(w, table);
    const g = gen(w);
    const bad = services(w);
    bad[0] = { ...bad[0], endpoints: [...bad[0].endpoints, { ...bad[0].endpoints[0], ip: '10.72.1.300', key: '10.72.1.300:8080' }] };
    await expect(p.sync(bad)).rejects.toBeInstanceOf(InvalidArgumentError);
    const clash = [...services(w), { ...services(w)[0], name: 'other' }];
    await expect(p.sync(clash)).rejects.toThrow(/both listen on tcp port 80/);
    expect(gen(w)).toBe(g);
    expect(listTable(w, table)).toBe(before);
    expect(() => createL4Programmer({ table, addresses: ['::1'], sourceNat: 'none', logger: captureLogger().logger, netns: w.ingress })).toThrow(InvalidArgumentError);
    expect(answeredBy(await w.cli.tcp(INGRESS_IP, 80))).toBe(w.backends[0].ip);
  });

  it('after someone else changes the ruleset (iptables-nft), re-lists only the structure: no element is read again, and the sync is right', async () => {
    const w = (world = await buildWorld(3));
    const table = uniqueName('l4t');
    const p = programmer(w, table);
    expect((await p.sync(services(w))).listed).toBe(0); // a table that did not exist has nothing to list
    const map = backendMapName(w, table, 'tcp', 80);
    const before = mapContents(w, table, map, 80);
    // the weft agent on the same host uses iptables-nft: any rule it writes moves the generation
    const g = gen(w);
    nsRun(w.ingress, 'iptables', ['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '9091', '-j', 'DNAT', '--to-destination', `${w.backends[0].ip}:${PORT}`]);
    expect(gen(w)).not.toBe(g);
    const same = await p.sync(services(w));
    expect(same).toMatchObject({ changed: 0, listed: 0 });
    nsRun(w.ingress, 'iptables', ['-A', 'FORWARD', '-p', 'tcp', '--dport', '9998', '-j', 'DROP']);
    const gone = w.backends[2];
    const r = await p.sync(services(w, [0, 1]));
    expect(r.listed).toBe(0);
    expect(r.changed).toBeGreaterThan(0);
    const after = mapContents(w, table, map, 80);
    for (const [i, k] of before) if (k !== gone.endpoint.key) expect(after.get(i)).toBe(k);
    expect([...after.values()]).not.toContain(gone.endpoint.key);
    expect(after.size).toBe(before.size);
    await tcpReaches(w, INGRESS_IP, 80, [w.backends[0].ip, w.backends[1].ip]);
    expect(answeredBy(await w.cli.tcp(INGRESS_IP, 9091))).toBe(w.backends[0].ip);

    // a map of ours made again by someone else has a new handle: its elements, and only its, are read again
    nsRun(w.ingress, 'nft', ['-f', '-'], `flush chain ip ${table} prerouting\nflush chain ip ${table} output\ndelete map ip ${table} udp_any\n`
      + `add map ip ${table} udp_any { type inet_service : verdict; }\nadd element ip ${table} udp_any { 9999 : drop }\n`);
    const fixed = await p.sync(services(w, [0, 1]));
    expect(fixed.listed).toBe(1);
    expect(fixed.changed).toBeGreaterThan(0);
    expect(listTable(w, table)).not.toContain('9999');
    expect([w.backends[0].ip, w.backends[1].ip]).toContain(answeredBy(await w.cli.udp(INGRESS_IP, 53)));
    expect((await p.sync(services(w, [0, 1]))).changed).toBe(0);

    // the table itself deleted: built again from scratch
    nsRun(w.ingress, 'nft', ['delete', 'table', 'ip', table]);
    expect((await p.sync(services(w, [0, 1]))).changed).toBeGreaterThan(0);
    await tcpReaches(w, INGRESS_IP, 80, [w.backends[0].ip, w.backends[1].ip]);
  });

  it('one endpoint change among 300 service ports is one transaction of that service\'s buckets alone, looked at alone; a restart then adopts it all with no write', async () => {
    const w = (world = await buildWorld(2));
    const table = uniqueName('l4t');
    const cap = captureLogger('info');
    const p = programmer(w, table, 'masquerade', [], { logger: cap.logger });
    const both = w.backends.map((b) => b.endpoint);
    const many: L4Service[] = Array.from({ length: 300 }, (_, i) => ({ name: `s${i}`, port: 2000 + i, protocol: i % 10 === 0 ? 'udp' : 'tcp', affinity: 'none', endpoints: both }));
    await p.sync(many);
    // a chain and a map per class and range of 64 ports (1984-2047 ... 2240-2303), not per service port
    const listing = listTable(w, table);
    expect([...listing.matchAll(/chain (lb_\w+)/g)].map((m) => m[1]).sort()).toEqual(['tcp', 'udp'].flatMap((proto) => [1984, 2048, 2112, 2176, 2240].map((first) => `lb_${proto}_211_flow_${first}`)));
    expect([...listing.matchAll(/map (\w+) \{/g)]).toHaveLength(4 + 10);
    const map = backendMapName(w, table, 'tcp', 2151);
    const before = mapContents(w, table, map, 2151);
    const ownShare = [...before.values()].filter((k) => k === both[1].key).length;
    // the whole table but port 2151's own elements (the other 269 TCP ports share its map)
    type Listed = { map?: { name: string; elem?: MapElem[] } };
    const others = (): string => JSON.stringify((JSON.parse(nsRun(w.ingress, 'nft', ['-j', 'list', 'table', 'ip', table])).nftables as Listed[])
      .map((o) => (o.map?.name === map ? { map: { ...o.map, elem: o.map.elem?.filter(([k]) => k.concat[0] !== 2151) } } : o)));
    const othersBefore = others();
    const g = gen(w);
    cap.lines.length = 0;

    const next = [...many];
    next[151] = { ...many[151], endpoints: [both[0]] };
    const r = await p.sync(next);
    // one transaction (the generation moved once) of a delete and an add per bucket of the removed backend
    expect(r).toMatchObject({ transactions: 1, changed: 2 * ownShare, listed: 0 });
    expect(gen(w)).toBe(g + 1);
    // the sync read the one service that changed, not the 300
    expect(cap.lines.filter((l) => l.msg === 'L4 table updated')).toMatchObject([{ services: 1, transactions: 1 }]);
    // in the kernel: that map's buckets of the removed backend moved, and nothing else in the table changed
    const after = mapContents(w, table, map, 2151);
    expect(after.size).toBe(before.size);
    expect(new Set(after.values())).toEqual(new Set([both[0].key]));
    expect(others()).toBe(othersBefore);
    await tcpReaches(w, INGRESS_IP, 2151, [w.backends[0].ip]);

    // a restarted ingress lists the 300 ports, finds nothing to change, and writes nothing
    p.close();
    const again = programmer(w, table);
    const adopt = await again.sync(next);
    expect(adopt).toMatchObject({ changed: 0, transactions: 0 });
    expect(adopt.listed).toBe(after.size * 300 + 300);
    expect(gen(w)).toBe(g + 1);
    expect(others()).toBe(othersBefore);
  });

  it('repairs within the audit period what someone else changed in its maps, moving nothing else, and then reads nothing while nobody else writes', async () => {
    const w = (world = await buildWorld(3));
    const table = uniqueName('l4t');
    const cap = captureLogger('info');
    const p = programmer(w, table, 'masquerade', [], { auditPeriodMs: 300, logger: cap.logger });
    await p.sync(services(w));
    const map = backendMapName(w, table, 'tcp', 80);
    const before = mapContents(w, table, map, 80);
    const keys = w.backends.map((b) => b.endpoint.key);
    // by hand: bucket 3 gone, bucket 4 sent to an address that is no backend, the UDP port's vmap element gone
    nsRun(w.ingress, 'nft', ['-f', '-'], `delete element ip ${table} ${map} { 80 . 3 }\ndelete element ip ${table} ${map} { 80 . 4 }\n`
      + `add element ip ${table} ${map} { 80 . 4 : 10.99.0.9 . 8080 }\ndelete element ip ${table} udp_any { 53 }\n`);
    expect(mapContents(w, table, map, 80).get(4)).toBe('10.99.0.9:8080');
    expect(listTable(w, table)).not.toMatch(/53 : goto lb_udp_/);

    await waitFor('the audit to repair the table', () => {
      const m = mapContents(w, table, map, 80);
      return m.size === before.size && [...m.values()].every((k) => keys.includes(k)) && /53 : goto lb_udp_/.test(listTable(w, table));
    }, 20_000, 100);
    const after = mapContents(w, table, map, 80);
    for (const [i, k] of before) if (i !== 3 && i !== 4) expect(after.get(i)).toBe(k);
    expect(cap.lines.some((l) => l.msg === 'repaired the L4 table: someone else had changed it')).toBe(true);
    expect([w.backends[0].ip, w.backends[1].ip, w.backends[2].ip]).toContain(answeredBy(await w.cli.udp(INGRESS_IP, 53)));

    // every map read again once: an audit step then costs one generation read, and writes nothing
    await waitFor('the audit to have read every map again', async () => (await p.audit()) === undefined, 10_000, 100);
    const g = gen(w);
    expect(await p.audit()).toBeUndefined();
    expect((await p.sync(services(w))).changed).toBe(0);
    expect(gen(w)).toBe(g);
  });

  it('a service that changes class moves its group to the other class map in one switch; a class nobody uses any more is deleted', async () => {
    const w = (world = await buildWorld(2));
    const table = uniqueName('l4t');
    const p = programmer(w, table);
    const eps = w.backends.map((b) => b.endpoint);
    const web: L4Service = { name: 'web', port: 80, protocol: 'tcp', affinity: 'none', endpoints: eps };
    const alt: L4Service = { name: 'alt', port: 81, protocol: 'tcp', affinity: 'none', endpoints: eps };
    await p.sync([web, alt]);
    const flow = backendMapName(w, table, 'tcp', 80);
    expect(backendMapName(w, table, 'tcp', 81)).toBe(flow);
    const altBefore = mapContents(w, table, flow, 81);
    expect(altBefore.size).toBe(maglevSize(2));
    const chains = () => [...listTable(w, table).matchAll(/chain (lb_\w+)/g)].map((m) => m[1]).sort();
    expect(chains()).toEqual([flow.replace(/^be_/, 'lb_')]);

    // port 80 to client-ip affinity: a new class, its chain and map made, port 80's group filled there,
    // then the switch and the old group's deletion in one transaction
    const g = gen(w);
    const r = await p.sync([{ ...web, affinity: 'client-ip' }, alt]);
    expect(r.transactions).toBe(3);
    expect(gen(w)).toBe(g + 3);
    const ip = backendMapName(w, table, 'tcp', 80);
    expect(ip).toBe(flow.replace(/_flow_/, '_ip_'));
    expect(mapContents(w, table, ip, 80).size).toBe(maglevSize(2));
    expect(mapContents(w, table, flow, 80).size).toBe(0);
    expect(mapContents(w, table, flow, 81)).toEqual(altBefore);
    expect(chains()).toEqual([flow.replace(/^be_/, 'lb_'), ip.replace(/^be_/, 'lb_')].sort());
    // client-ip: one client, one backend, whatever its source port
    const by = new Set<string>();
    for (let i = 0; i < 6; i++) by.add(answeredBy(await w.cli.tcp(INGRESS_IP, 80))!);
    expect(by.size).toBe(1);
    await tcpReaches(w, INGRESS_IP, 81, w.backends.map((b) => b.ip));

    // port 81 gone: the flow class has no service left, its chain and map go
    expect((await p.sync([{ ...web, affinity: 'client-ip' }])).changed).toBeGreaterThan(0);
    expect(listTable(w, table)).not.toContain(flow);
    expect(chains()).toEqual([ip.replace(/^be_/, 'lb_')]);
    expect((await w.cli.tcp(INGRESS_IP, 81)).error).toBeDefined();
    expect(answeredBy(await w.cli.tcp(INGRESS_IP, 80))).toBe([...by][0]);
    expect((await p.sync([{ ...web, affinity: 'client-ip' }])).changed).toBe(0);
  });

  it('upgrades a table of the per-service layout in place: the flows keep their backends, old chains and maps go, a restart then writes nothing', async () => {
    const w = (world = await buildWorld(3));
    const table = uniqueName('l4t');
    const T = `ip ${table}`;
    const keys = w.backends.map((b) => b.endpoint.key).sort();
    const size = maglevSize(keys.length);
    // the table as the per-service layout left it: a chain and a map per service port, the buckets a
    // Maglev table moved by a history (backend 0's first slot given to backend 1), the same base chains
    const table0 = maglevTable(keys, size);
    const moved = table0.indexOf(0);
    table0[moved] = 1;
    const mark = `0x${MASQ_MARK.toString(16).padStart(8, '0')}`;
    const cmds = [`add table ${T}`];
    const rule = (chain: string, r: string) => cmds.push(`add rule ${T} ${chain} ${r} comment "${ruleComment(r)}"`);
    for (const [name, hook, prio] of [['prerouting', 'prerouting', 'dstnat'], ['output', 'output', '-100'], ['postrouting', 'postrouting', 'srcnat']]) {
      cmds.push(`add chain ${T} ${name} { type nat hook ${hook} priority ${prio}; policy accept; }`);
    }
    for (const p of ['tcp', 'udp']) {
      cmds.push(`add map ${T} ${p}_svc { type ipv4_addr . inet_service : verdict; }`, `add map ${T} ${p}_any { type inet_service : verdict; }`);
    }
    for (const c of ['prerouting', 'output']) for (const p of ['tcp', 'udp']) rule(c, `ip daddr . ${p} dport vmap @${p}_svc`), rule(c, `fib daddr type local ${p} dport vmap @${p}_any`);
    rule('postrouting', `meta mark & ${mark} == ${mark} meta mark set meta mark ^ ${mark} masquerade`);
    for (const [p, port] of [['tcp', 80], ['udp', 53]] as const) {
      const suffix = `${p}_${port}_${size}_flow`;
      cmds.push(`add map ${T} be_${suffix} { typeof numgen inc mod 2 : ip daddr . ${p} dport; size ${size}; }`, `add chain ${T} svc_${suffix}`);
      rule(`svc_${suffix}`, `meta l4proto ${p} meta mark set meta mark | ${mark} dnat ip to jhash ip saddr . ${p} sport mod ${size} seed 0x${HASH_SEED.toString(16)} map @be_${suffix}`);
      cmds.push(`add element ${T} be_${suffix} { ${Array.from(table0, (x, i) => `${i} : ${keys[x].replace(':', ' . ')}`).join(', ')} }`);
      cmds.push(`add element ${T} ${p}_any { ${port} : goto svc_${suffix} }`);
    }
    nsRun(w.ingress, 'nft', ['-f', '-'], `${cmds.join('\n')}\n`);
    // a connection open through the old layout
    let conn: string | undefined;
    let connBy: string | undefined;
    for (let i = 0; !conn && i < 50; i++) {
      connBy = answeredBy(await w.cli.open(`u${i}`, INGRESS_IP, 80));
      if (connBy) conn = `u${i}`;
    }
    expect(conn).toBeDefined();

    const p = programmer(w, table);
    const r = await p.sync(services(w));
    expect(r.changed).toBeGreaterThan(0);
    // the new chains and maps, then the groups, then the switch, then the old ones deleted
    expect(r.transactions).toBe(4);
    const listing = listTable(w, table);
    expect(listing).not.toMatch(/svc_(tcp|udp)_|be_(tcp|udp)_\d+_\d+_/);
    expect(listing).toMatch(/80 : goto lb_tcp_\d+_flow_64/);
    const map = backendMapName(w, table, 'tcp', 80);
    expect(map).toBe(`be_tcp_${size}_flow_64`);
    // every bucket kept its backend, the moved one included: no flow changes backend by the upgrade
    const after = mapContents(w, table, map, 80);
    expect(after.size).toBe(size);
    for (let i = 0; i < size; i++) expect(after.get(i)).toBe(keys[table0[i]]);
    expect(mapContents(w, table, backendMapName(w, table, 'udp', 53), 53)).toEqual(after);
    expect(answeredBy(await w.cli.send(conn!))).toBe(connBy);
    await tcpReaches(w, INGRESS_IP, 80, w.backends.map((b) => b.ip));
    // adopted as it is now: nothing to write, by this programmer or a restarted one
    const g = gen(w);
    expect((await p.sync(services(w))).changed).toBe(0);
    p.close();
    expect(await programmer(w, table).sync(services(w))).toMatchObject({ changed: 0, transactions: 0 });
    expect(gen(w)).toBe(g);
  });

  it('coexists with iptables rules in the same namespace, and remove() leaves nothing behind', async () => {
    const w = (world = await buildWorld(2));
    // someone else's rules: a DNAT of port 9090 to backend 0, and a filter rule
    nsRun(w.ingress, 'iptables', ['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '9090', '-j', 'DNAT', '--to-destination', `${w.backends[0].ip}:${PORT}`]);
    nsRun(w.ingress, 'iptables', ['-A', 'FORWARD', '-p', 'tcp', '--dport', '9999', '-j', 'DROP']);
    const rulesBefore = nsRun(w.ingress, 'iptables-save', []).replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, '');
    const table = uniqueName('l4t');
    const p = programmer(w, table);
    await p.sync(services(w));
    expect(answeredBy(await w.cli.tcp(INGRESS_IP, 9090))).toBe(w.backends[0].ip);
    await tcpReaches(w, INGRESS_IP, 80, w.backends.map((b) => b.ip));
    await p.remove();
    expect(nsRun(w.ingress, 'nft', ['list', 'tables'])).not.toContain(table);
    expect(nsRun(w.ingress, 'iptables-save', []).replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, '')).toBe(rulesBefore);
    expect(answeredBy(await w.cli.tcp(INGRESS_IP, 9090))).toBe(w.backends[0].ip);
    expect((await w.cli.tcp(INGRESS_IP, 80)).error).toBeDefined(); // nothing listens on the ingress itself
    // remove() twice is fine, and a later sync builds it again
    await p.remove();
    expect((await p.sync(services(w))).changed).toBeGreaterThan(0);
    await p.remove();
    expect(nsRun(w.ingress, 'nft', ['list', 'tables'])).not.toContain(table);
  });
});
