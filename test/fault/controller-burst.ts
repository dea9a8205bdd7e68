// An allocation burst against real `weft controller` processes, and the
// check of what the store holds after it. Shared by the SIGKILL storm
// (controller-kill.test.ts) and the etcd leader kill (etcd-leader-kill.test.ts).
//
// The burst: `lanes` concurrent clients, each with its own host identity
// (a client certificate for that host, issued with the cluster's CA), call
// RegisterHost (which acquires the host's subnet lease) and then
// RegisterEndpoint for one address in that subnet, through the real gRPC
// API over mTLS. A call that fails (the controller died under it, or is not
// listening yet) is retried, as an agent does, until it is acknowledged.
// Once every host is acknowledged the lanes keep writing: they register
// acknowledged hosts again, which must give back the same subnet.
//
// The definitions the checks use:
// - acknowledged: the controller answered OK to the client;
// - lost: a lease or endpoint acknowledged to a client but absent from the
//   store (or held by someone else) after recovery;
// - duplicate: one subnet held by two hosts, one host holding two subnets in
//   one network (in the leases or in the host -> lease index), or a host
//   told two different subnets over the run.
import * as grpc from '@grpc/grpc-js';
import { decodeLeaseRecord, parseLeaseKey, LEASE_HOSTS_PREFIX, leasePrefix } from '../../controller/ipam/records';
import { formatCidr, parseCidr } from '../../controller/common/cidr';
import { listEndpoints } from '../../controller/registry/endpoints';
import type { Store } from '../../controller/store/types';
import { clientCredentials, issueClientCert, type Ca } from '../../controller/pki';
import { call, client, type Client } from '../controller/daemon-process';

export const NETWORK = 'default';

export type Ack = { host: string; subnet: string; endpointIp?: string; container: string };

export type Burst = {
  /** host -> what the controller acknowledged to it */
  acks: Map<string, Ack>;
  /** subnets a host was told that differ from its first answer (each one a duplicate) */
  changed: string[];
  /** calls that failed (the controller was down or died under them) and were retried */
  failedCalls: number;
  okCalls: number;
  /** when (performance.now()) each host's first lease was acknowledged: one per new allocation */
  newLeaseAckedAt: number[];
  inFlight(): number;
  /** resolves once every host is acknowledged with its lease and its endpoint */
  allAcked: Promise<void>;
  stop(): Promise<void>;
};

type HostIdentity = { name: string; creds: grpc.ChannelCredentials; index: number };

export async function hostIdentities(ca: Ca, prefix: string, count: number): Promise<HostIdentity[]> {
  const out: HostIdentity[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${String(i).padStart(3, '0')}`;
    const cert = await issueClientCert(ca, { host: name, ttlDays: 1 });
    out.push({ name, index: i, creds: clientCredentials({ caPem: ca.certPem, certPem: cert.certPem, keyPem: cert.keyPem! }) });
  }
  return out;
}

function registerRequest(h: HostIdentity) {
  const n = h.index + 1;
  return {
    name: h.name, underlay_ip: `192.168.${Math.floor(n / 250)}.${(n % 250) + 1}`,
    vtep_mac: `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
    rack: 'r1', datacenter: 'dc1', wg_public_key: '', agent_version: 'fault-test', networks: [NETWORK],
  };
}

/** The address a host's one endpoint takes: .10 of its subnet. */
function endpointIp(subnet: string): string {
  return subnet.replace(/\.0\/\d+$/, '.10');
}

/**
 * Starts the burst against whatever port `port()` resolves to at the moment
 * of each call (a restarted controller, or another member, listens
 * elsewhere). While a controller is down `port()` stays pending: clients
 * wait for it as agents back off, instead of spinning on a closed port.
 */
export function startBurst(hosts: HostIdentity[], port: () => Promise<number>, lanes: number): Burst {
  const acks = new Map<string, Ack>();
  const changed: string[] = [];
  let failedCalls = 0;
  let okCalls = 0;
  let inFlight = 0;
  const newLeaseAckedAt: number[] = [];
  let stopped = false;
  let next = 0;
  let onAll!: () => void;
  const allAcked = new Promise<void>((r) => (onAll = r));

  async function once<T>(h: HostIdentity, method: string, req: unknown): Promise<T | undefined> {
    const c: Client = client(await port(), h.creds);
    inFlight++;
    try {
      const res = await call<T>(c, method, req);
      okCalls++;
      return res;
    } catch (err) {
      const code = (err as grpc.ServiceError).code;
      // only "the controller is not there" is expected; anything else is a finding
      if (code !== grpc.status.UNAVAILABLE && code !== grpc.status.DEADLINE_EXCEEDED && code !== grpc.status.CANCELLED) {
        throw new Error(`${method} for ${h.name}: ${(err as Error).message}`);
      }
      failedCalls++;
      return undefined;
    } finally {
      inFlight--;
      c.close();
    }
  }

  async function untilAcked<T>(h: HostIdentity, method: string, req: unknown): Promise<T | undefined> {
    for (;;) {
      if (stopped) return undefined;
      const res = await once<T>(h, method, req);
      if (res !== undefined) return res;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  function told(h: HostIdentity, subnet: string): void {
    const had = acks.get(h.name);
    if (had && had.subnet !== subnet) changed.push(`${h.name}: ${had.subnet} then ${subnet}`);
  }

  async function serve(h: HostIdentity): Promise<void> {
    const reg = await untilAcked<any>(h, 'RegisterHost', registerRequest(h));
    if (!reg) return;
    const subnet = reg.host.subnets.find((s: { network: string }) => s.network === NETWORK)?.subnet as string;
    told(h, subnet);
    const container = `c-${h.name}`;
    if (!acks.has(h.name)) {
      acks.set(h.name, { host: h.name, subnet, container });
      newLeaseAckedAt.push(performance.now());
    }
    const ack = acks.get(h.name)!;
    if (ack.endpointIp) return;
    const ip = endpointIp(subnet);
    const ep = await untilAcked(h, 'RegisterEndpoint', { endpoint: { network: NETWORK, ip, container_id: container, host: h.name, labels: {}, ifname: 'eth0' } });
    if (ep) ack.endpointIp = ip;
    if ([...acks.values()].filter((a) => a.endpointIp).length === hosts.length) onAll();
  }

  async function lane(): Promise<void> {
    while (!stopped) {
      // new hosts first; then registrations again, which must change nothing
      const h = next < hosts.length ? hosts[next++] : hosts[Math.floor(Math.random() * hosts.length)];
      await serve(h);
    }
  }

  const running = Promise.all(Array.from({ length: lanes }, lane));
  let failure: unknown;
  running.catch((e) => (failure = e));
  return {
    acks, changed, newLeaseAckedAt,
    get failedCalls() { return failedCalls; },
    get okCalls() { return okCalls; },
    inFlight: () => inFlight,
    allAcked: Promise.race([allAcked, running.then(() => undefined)]),
    async stop() {
      stopped = true;
      await running.catch(() => undefined);
      if (failure) throw failure;
    },
  } as Burst;
}

/** The port clients dial: pending while the controller is down, so a burst waits instead of spinning. */
export class ControllerPort {
  #current: Promise<number>;
  #resolve: (port: number) => void = () => undefined;

  constructor(port: number) {
    this.#current = Promise.resolve(port);
  }

  get = (): Promise<number> => this.#current;

  /** Calls made from now on wait for up(). */
  down(): void {
    this.#current = new Promise((r) => (this.#resolve = r));
  }

  up(port: number): void {
    this.#resolve(port);
    this.#current = Promise.resolve(port);
  }
}

export type StoreAudit = { leases: number; endpoints: number; lost: string[]; duplicates: string[] };

/** What the store holds, against what was acknowledged: every lost lease or endpoint and every duplicate, by name. */
export async function auditStore(store: Store, acks: Iterable<Ack>): Promise<StoreAudit> {
  const lost: string[] = [];
  const duplicates: string[] = [];
  // every lease record must decode: a torn write is a finding, not something to skip
  const leases = (await store.range(leasePrefix(NETWORK))).kvs.map((kv) => ({
    subnet: formatCidr(parseLeaseKey(kv.key).subnet), host: decodeLeaseRecord(kv.key, kv.value).host,
  }));
  const bySubnet = new Map<string, string[]>();
  const byHost = new Map<string, string[]>();
  for (const l of leases) {
    bySubnet.set(l.subnet, [...(bySubnet.get(l.subnet) ?? []), l.host]);
    byHost.set(l.host, [...(byHost.get(l.host) ?? []), l.subnet]);
  }
  for (const [s, hs] of bySubnet) if (hs.length > 1) duplicates.push(`subnet ${s} held by ${hs.join(', ')}`);
  for (const [h, ss] of byHost) if (ss.length > 1) duplicates.push(`host ${h} holds ${ss.join(', ')}`);
  // the host -> lease index says the same as the leases, entry for entry
  const index = (await store.range(`${LEASE_HOSTS_PREFIX}${NETWORK}/`)).kvs;
  const indexed = new Map(index.map((kv) => [kv.key.slice(`${LEASE_HOSTS_PREFIX}${NETWORK}/`.length), kv.value]));
  for (const [h, ss] of byHost) {
    const v = indexed.get(h);
    if (v === undefined) lost.push(`host index entry for ${h} (lease ${ss[0]}) missing`);
    else if (v !== ss[0].replace('/', '-')) duplicates.push(`host index says ${h} -> ${v}, lease says ${ss[0]}`);
  }
  for (const h of indexed.keys()) if (!byHost.has(h)) duplicates.push(`host index entry for ${h} without a lease`);
  const { endpoints } = await listEndpoints(store, { network: NETWORK });
  const epByIp = new Map(endpoints.map((e) => [e.ip, e]));
  for (const a of acks) {
    const held = bySubnet.get(formatCidr(parseCidr(a.subnet)));
    if (!held?.includes(a.host)) lost.push(`lease ${a.subnet} acknowledged to ${a.host}, store has ${held ? held.join(', ') : 'nothing'}`);
    if (a.endpointIp) {
      const e = epByIp.get(a.endpointIp);
      if (!e || e.containerId !== a.container || e.host !== a.host) lost.push(`endpoint ${a.endpointIp} acknowledged to ${a.container}, store has ${e ? e.containerId : 'nothing'}`);
    }
  }
  return { leases: leases.length, endpoints: endpoints.length, lost, duplicates };
}
