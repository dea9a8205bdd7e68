// Container addresses on this host: which (container, interface) holds which
// address of the host's subnet, in one SQLite file. An ADD that returned has
// its address on disk (WAL + synchronous=FULL), so an agent crash never hands
// the same address to two containers. Each allocation is one IMMEDIATE
// transaction: the uniqueness constraints, not the caller's care, are what
// make a double allocation impossible.
import { CniError, CNI_ERR } from '../cni/types';
import { bytesToIp, ipToBytes, networkOf, parseCidr } from '../../dataplane/netlink/ip';
import { agentDbPath, openAgentDb } from './state/agent-db';


export type Allocation = {
  network: string;
  /** The bare address, e.g. 10.244.3.7. */
  ip: string;
  containerId: string;
  ifname: string;
  /** Container netns path as given to ADD; lets GC tell a dead container from a live one. */
  netns?: string;
  /** Unix ms. */
  createdAt: number;
};

export type AllocateResult = {
  allocation: Allocation;
  /** False when (containerId, ifname) already held this address: an ADD retry. */
  fresh: boolean;
  /** The same (containerId, ifname) held an address outside the current subnet; it was dropped for this one. */
  replaced?: Allocation;
};

export type IpamStore = {
  /**
   * The address of (containerId, ifname) in `network`: the one it already
   * holds, or the next free one after the last handed out. Throws
   * CniError ADDRESSES_EXHAUSTED when every usable address is taken.
   * With `requested`, exactly that address or a CniError
   * ADDRESS_UNAVAILABLE saying why not (outside the subnet's usable
   * addresses, the gateway, held by another container, or the container
   * already holding another); nothing is allocated on a refusal.
   */
  allocate(network: string, subnet: string, gateway: string, containerId: string, ifname: string, opts?: { netns?: string; requested?: string }): AllocateResult;
  get(network: string, containerId: string, ifname: string): Allocation | undefined;
  /** Frees the address; returns what was freed, undefined when there was nothing (DEL is idempotent). */
  release(network: string, containerId: string, ifname: string): Allocation | undefined;
  /** Every allocation, or those of one network, oldest first. */
  list(network?: string): Allocation[];
  /** GC: frees every allocation of `network` whose (containerId, ifname) is not in `valid`; returns the freed. */
  releaseAllExcept(network: string, valid: Array<{ containerId: string; ifname: string }>): Allocation[];
  /** Allocations of `network` outside `subnet`: after the host got another subnet, these containers hold addresses routed elsewhere. */
  outsideSubnet(network: string, subnet: string): Allocation[];
  close(): void;
};

export type IpamStoreOptions = {
  /** Default: the agent's DB in the default state dir (/var/lib/weft/agent/agent.db). */
  path?: string;
  /** How long a write waits for another connection's lock (ms). */
  busyTimeoutMs?: number;
  /** Clock, for tests. */
  now?: () => number;
};

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ipam_allocations (
  network TEXT NOT NULL,
  ip TEXT NOT NULL,
  container_id TEXT NOT NULL,
  ifname TEXT NOT NULL,
  netns TEXT,
  created_at INTEGER NOT NULL,
  UNIQUE (network, ip),
  UNIQUE (network, container_id, ifname)
);
CREATE TABLE IF NOT EXISTS ipam_cursors (
  network TEXT PRIMARY KEY,
  subnet TEXT NOT NULL,
  last_ip TEXT NOT NULL
) WITHOUT ROWID;
`;

type Row = { network: string; ip: string; container_id: string; ifname: string; netns: string | null; created_at: number };

function toAllocation(r: Row): Allocation {
  const a: Allocation = { network: r.network, ip: r.ip, containerId: r.container_id, ifname: r.ifname, createdAt: r.created_at };
  if (r.netns !== null) a.netns = r.netns;
  return a;
}

// ---- address arithmetic: addresses as bigints so IPv4 and IPv6 share one path ----

export type SubnetRange = {
  /** Canonical CIDR (host bits cleared). */
  cidr: string;
  bytes: number;
  /** First and last usable address (network address and the last one excluded). */
  first: bigint;
  last: bigint;
  prefixLen: number;
};

function toBig(ip: string): bigint {
  return ipToBytes(ip).reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

function fromBig(n: bigint, bytes: number): string {
  const b = Buffer.alloc(bytes);
  for (let i = bytes - 1; i >= 0; i--) {
    b[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return bytesToIp(b);
}

/**
 * The usable addresses of a subnet. The last address is left out for both
 * families: IPv4's broadcast, and for IPv6 the same rule keeps one code path
 * at the cost of one address in 2^64.
 */
export function subnetRange(subnet: string): SubnetRange {
  let c;
  try {
    c = networkOf(parseCidr(subnet));
  } catch (e) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `invalid subnet "${subnet}": ${(e as Error).message}`);
  }
  const bytes = ipToBytes(c.ip).length;
  const hostBits = BigInt(bytes * 8 - c.prefixLen);
  if (hostBits < 2n) throw new CniError(CNI_ERR.INVALID_CONFIG, `subnet ${subnet} is too small for containers (needs at least a /${bytes * 8 - 2})`);
  const base = toBig(c.ip);
  return { cidr: `${c.ip}/${c.prefixLen}`, bytes, first: base + 1n, last: base + (1n << hostBits) - 2n, prefixLen: c.prefixLen };
}

export function inSubnet(ip: string, range: SubnetRange): boolean {
  let n: bigint;
  try {
    if (ipToBytes(ip).length !== range.bytes) return false;
    n = toBig(ip);
  } catch {
    return false;
  }
  // the network and last address count as inside: they are of the subnet, just not handed out
  return n >= range.first - 1n && n <= range.last + 1n;
}

// ---- the store ----

export function openIpamStore(opts: IpamStoreOptions = {}): IpamStore {
  const path = opts.path ?? agentDbPath();
  const now = opts.now ?? Date.now;
  const db = openAgentDb(path, opts.busyTimeoutMs);
  db.exec(SCHEMA);

  const q = {
    byKey: db.prepare<[string, string, string], Row>('SELECT * FROM ipam_allocations WHERE network = ? AND container_id = ? AND ifname = ?'),
    ipsOf: db.prepare<[string], { ip: string }>('SELECT ip FROM ipam_allocations WHERE network = ?'),
    insert: db.prepare('INSERT INTO ipam_allocations (network, ip, container_id, ifname, netns, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    delKey: db.prepare('DELETE FROM ipam_allocations WHERE network = ? AND container_id = ? AND ifname = ?'),
    cursor: db.prepare<[string], { subnet: string; last_ip: string }>('SELECT subnet, last_ip FROM ipam_cursors WHERE network = ?'),
    setCursor: db.prepare(
      'INSERT INTO ipam_cursors (network, subnet, last_ip) VALUES (?, ?, ?) ON CONFLICT (network) DO UPDATE SET subnet = excluded.subnet, last_ip = excluded.last_ip',
    ),
    all: db.prepare<[], Row>('SELECT * FROM ipam_allocations ORDER BY created_at, rowid'),
    ofNetwork: db.prepare<[string], Row>('SELECT * FROM ipam_allocations WHERE network = ? ORDER BY created_at, rowid'),
  };

  function nextFree(network: string, range: SubnetRange, gateway: bigint): bigint | undefined {
    const taken = new Set<bigint>();
    for (const { ip } of q.ipsOf.all(network)) {
      try {
        taken.add(toBig(ip));
      } catch {
        /* an address of the other family cannot collide */
      }
    }
    // start after the last address handed out in this subnet, as host-local
    // does, so an address just freed is not given straight to the next container
    const cur = q.cursor.get(network);
    let start = range.first;
    if (cur && cur.subnet === range.cidr) {
      const last = toBig(cur.last_ip);
      if (last >= range.first && last < range.last) start = last + 1n;
    }
    const size = range.last - range.first + 1n;
    for (let i = 0n; i < size; i++) {
      let n = start + i;
      if (n > range.last) n -= size;
      if (n !== gateway && !taken.has(n)) return n;
    }
    return undefined;
  }

  /** The requested address if it can be given to (containerId, ifname), else the refusal. */
  function requestedFree(network: string, range: SubnetRange, gateway: bigint, containerId: string, ifname: string, requested: string): bigint {
    const refuse = (why: string) => new CniError(CNI_ERR.ADDRESS_UNAVAILABLE, `requested address ${requested} in network "${network}": ${why}`);
    let n: bigint;
    try {
      n = toBig(requested);
    } catch {
      throw refuse('not an address of the subnet\'s family');
    }
    // the gateway is the subnet's first usable address: containers get the ones after it
    const usable = `${fromBig(gateway === range.first ? range.first + 1n : range.first, range.bytes)}-${fromBig(range.last, range.bytes)}`;
    if (!inSubnet(requested, range)) throw refuse(`outside this host's subnet ${range.cidr} (containers on this host get addresses ${usable})`);
    if (n < range.first || n > range.last) throw refuse(`the subnet's network or broadcast address (usable: ${usable})`);
    if (n === gateway) throw refuse(`the gateway of this host's subnet ${range.cidr}`);
    for (const r of q.ofNetwork.all(network)) {
      if (r.container_id === containerId && r.ifname === ifname) continue;
      let held: bigint;
      try {
        held = toBig(r.ip);
      } catch {
        continue;
      }
      if (held === n) throw refuse(`taken by container ${r.container_id.slice(0, 12)} (${r.ifname})`);
    }
    return n;
  }

  const allocateTx = db.transaction(
    (network: string, range: SubnetRange, gateway: bigint, containerId: string, ifname: string, netns: string | null, requested: string | null): AllocateResult => {
      const existing = q.byKey.get(network, containerId, ifname);
      let replaced: Allocation | undefined;
      if (existing && requested !== null && inSubnet(existing.ip, range) && toBig(existing.ip) !== gateway) {
        // a retry of the same request gets what it got; asking for another address while holding one is refused
        if (existing.ip === requested) return { allocation: toAllocation(existing), fresh: false };
        throw new CniError(CNI_ERR.ADDRESS_UNAVAILABLE, `requested address ${requested} in network "${network}": container ${containerId.slice(0, 12)} (${ifname}) already holds ${existing.ip}`);
      }
      if (requested !== null) {
        const n = requestedFree(network, range, gateway, containerId, ifname, requested);
        if (existing) {
          replaced = toAllocation(existing);
          q.delKey.run(network, containerId, ifname);
        }
        const ip = fromBig(n, range.bytes);
        const createdAt = now();
        // the round-robin cursor stays: a chosen address says nothing about where the next free one is
        q.insert.run(network, ip, containerId, ifname, netns, createdAt);
        const allocation: Allocation = { network, ip, containerId, ifname, createdAt };
        if (netns !== null) allocation.netns = netns;
        return replaced ? { allocation, fresh: true, replaced } : { allocation, fresh: true };
      }
      if (existing) {
        if (inSubnet(existing.ip, range) && toBig(existing.ip) !== gateway) return { allocation: toAllocation(existing), fresh: false };
        replaced = toAllocation(existing);
        q.delKey.run(network, containerId, ifname);
      }
      const n = nextFree(network, range, gateway);
      if (n === undefined) {
        throw new CniError(
          CNI_ERR.ADDRESSES_EXHAUSTED,
          `no free address for network "${network}" in subnet ${range.cidr} on this host`,
          `all ${range.last - range.first} usable addresses (network, broadcast and gateway excluded) are allocated`,
        );
      }
      const ip = fromBig(n, range.bytes);
      const createdAt = now();
      q.insert.run(network, ip, containerId, ifname, netns, createdAt);
      q.setCursor.run(network, range.cidr, ip);
      const allocation: Allocation = { network, ip, containerId, ifname, createdAt };
      if (netns !== null) allocation.netns = netns;
      return replaced ? { allocation, fresh: true, replaced } : { allocation, fresh: true };
    },
  );

  const releaseTx = db.transaction((network: string, containerId: string, ifname: string): Allocation | undefined => {
    const existing = q.byKey.get(network, containerId, ifname);
    if (!existing) return undefined;
    q.delKey.run(network, containerId, ifname);
    return toAllocation(existing);
  });

  const releaseAllExceptTx = db.transaction((network: string, valid: Array<{ containerId: string; ifname: string }>): Allocation[] => {
    const keep = new Set(valid.map((v) => `${v.containerId}\0${v.ifname}`));
    const freed: Allocation[] = [];
    for (const r of q.ofNetwork.all(network)) {
      if (keep.has(`${r.container_id}\0${r.ifname}`)) continue;
      q.delKey.run(network, r.container_id, r.ifname);
      freed.push(toAllocation(r));
    }
    return freed;
  });

  return {
    allocate(network, subnet, gateway, containerId, ifname, o = {}) {
      if (!network) throw new CniError(CNI_ERR.INVALID_CONFIG, 'network name is required for an address');
      if (!containerId) throw new CniError(CNI_ERR.INVALID_ENV, 'container id is required for an address');
      if (!ifname) throw new CniError(CNI_ERR.INVALID_ENV, 'interface name is required for an address');
      const range = subnetRange(subnet);
      if (!inSubnet(gateway, range)) {
        throw new CniError(CNI_ERR.INVALID_CONFIG, `gateway ${gateway} of network "${network}" is not in its subnet ${range.cidr}`);
      }
      // IMMEDIATE takes the write lock before reading, so a second connection cannot pick the same free address
      return allocateTx.immediate(network, range, toBig(gateway), containerId, ifname, o.netns ?? null, o.requested ?? null);
    },
    get(network, containerId, ifname) {
      const r = q.byKey.get(network, containerId, ifname);
      return r ? toAllocation(r) : undefined;
    },
    release(network, containerId, ifname) {
      return releaseTx.immediate(network, containerId, ifname);
    },
    list(network) {
      return (network === undefined ? q.all.all() : q.ofNetwork.all(network)).map(toAllocation);
    },
    releaseAllExcept(network, valid) {
      return releaseAllExceptTx.immediate(network, valid);
    },
    outsideSubnet(network, subnet) {
      const range = subnetRange(subnet);
      return q.ofNetwork.all(network).filter((r) => !inSubnet(r.ip, range)).map(toAllocation);
    },
    close() {
      if (db.open) db.close();
    },
  };
}
