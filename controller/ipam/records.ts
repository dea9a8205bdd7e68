// Store key layout and the JSON stored under lease keys. One place, so the
// config check and the lease manager agree on what a lease looks like.
import { isDnsLabel } from '../common/dns-label';
import type { Cidr } from '../common/cidr';
import { keyToSubnet, subnetToKey } from './subnets';

export const CONFIG_KEY = '/weft/config';
export const LEASES_PREFIX = '/weft/leases/';
/**
 * Index host -> subnet, one key per (network, host). Creating it in the same
 * transaction as the lease (version == 0) is what makes "one lease per host
 * per network" hold even when two controllers serve the same host at once;
 * the lease keys alone cannot express that in a compare. Kept outside
 * /weft/leases/ so lease watchers see only leases.
 */
export const LEASE_HOSTS_PREFIX = '/weft/lease-hosts/';

/** What is stored under /weft/leases/<net>/<subnet>. Times are ms since the epoch. */
export type LeaseRecord = {
  host: string;
  datacenter?: string;
  acquiredAt: number;
  expiresAt: number;
};

const HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;

export { isDnsLabel };

/** Host names become key segments: no "/", no spaces, at most 253 characters. */
export function isHostName(s: unknown): s is string {
  return typeof s === 'string' && HOST_RE.test(s);
}

export function leasePrefix(network: string): string {
  return `${LEASES_PREFIX}${network}/`;
}

export function leaseKey(network: string, subnet: Cidr): string {
  return `${leasePrefix(network)}${subnetToKey(subnet)}`;
}

export function leaseHostKey(network: string, host: string): string {
  return `${LEASE_HOSTS_PREFIX}${network}/${host}`;
}

/** "/weft/leases/default/10.244.3.0-24" -> { network: "default", subnet }; throws on a foreign key. */
export function parseLeaseKey(key: string): { network: string; subnet: Cidr } {
  if (!key.startsWith(LEASES_PREFIX)) throw new Error(`"${key}" is not a lease key (must start with ${LEASES_PREFIX})`);
  const rest = key.slice(LEASES_PREFIX.length).split('/');
  if (rest.length !== 2 || !rest[0] || !rest[1]) throw new Error(`"${key}" is not a lease key (expected ${LEASES_PREFIX}<network>/<subnet>)`);
  return { network: rest[0], subnet: keyToSubnet(rest[1]) };
}

export function encodeLeaseRecord(r: LeaseRecord): string {
  const out: LeaseRecord = { host: r.host, acquiredAt: r.acquiredAt, expiresAt: r.expiresAt };
  if (r.datacenter !== undefined) out.datacenter = r.datacenter;
  return JSON.stringify(out);
}

export function decodeLeaseRecord(key: string, value: string): LeaseRecord {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch (err) {
    throw new Error(`lease ${key} holds invalid JSON: ${(err as Error).message}`);
  }
  const r = v as Partial<LeaseRecord> | null;
  if (
    !r ||
    typeof r !== 'object' ||
    !isHostName(r.host) ||
    !Number.isFinite(r.expiresAt) ||
    !Number.isFinite(r.acquiredAt) ||
    (r.datacenter !== undefined && !isDnsLabel(r.datacenter))
  ) {
    throw new Error(`lease ${key} holds a malformed record: ${value.slice(0, 200)}`);
  }
  return { host: r.host, datacenter: r.datacenter, acquiredAt: r.acquiredAt as number, expiresAt: r.expiresAt as number };
}
