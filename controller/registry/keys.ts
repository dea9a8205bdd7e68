// Store key layout of the registry, one prefix per kind, so a watch or a
// range on a prefix sees exactly one kind of record.
export const HOSTS_PREFIX = '/weft/hosts/';
export const ENDPOINTS_PREFIX = '/weft/endpoints/';
export const SERVICES_PREFIX = '/weft/services/';
export const DATACENTERS_PREFIX = '/weft/datacenters/';
/**
 * Which host holds each value that must be unique among hosts (VTEP MAC,
 * underlay address, WireGuard key): /weft/host-index/<field>/<value> -> host
 * name. Written in the same transaction as the host record, so two hosts
 * cannot both claim a value. Not under HOSTS_PREFIX, so host watchers and
 * counts see host records only.
 */
export const HOST_INDEX_PREFIX = '/weft/host-index/';
/**
 * What each host's agent last reported with a heartbeat (overlay reconcile
 * summary, agent version): /weft/host-status/<name>. Written in the same
 * transaction as the heartbeat's host record, so it costs no extra revision;
 * not under HOSTS_PREFIX, so the topology watch (and every agent behind it)
 * never hears of it, and any controller can answer ListHosts from the store.
 */
export const HOST_STATUS_PREFIX = '/weft/host-status/';
/**
 * Client certificates the CA issued, per identity, so deleting a host or its
 * leaving can revoke every certificate it holds:
 * /weft/certs/<kind>/<name>/<serial>. Each record is bound to a store lease
 * that ends when the certificate could no longer be used (its expiry plus the
 * renewal grace window), so the store prunes them itself.
 */
export const CERTS_PREFIX = '/weft/certs/';
/** Revoked serials, /weft/revoked/<serial>, likewise pruned by a lease once the certificate is useless anyway. */
export const REVOKED_PREFIX = '/weft/revoked/';

export const hostKey = (name: string): string => HOSTS_PREFIX + name;
export const hostStatusKey = (name: string): string => HOST_STATUS_PREFIX + name;
export const endpointPrefix = (network: string): string => `${ENDPOINTS_PREFIX}${network}/`;
/** `ip` must be canonical text (see api/validate canonicalIp), or one address would have two keys. */
export const endpointKey = (network: string, ip: string): string => endpointPrefix(network) + ip;
export const serviceKey = (name: string): string => SERVICES_PREFIX + name;
export const datacenterKey = (name: string): string => DATACENTERS_PREFIX + name;
export const identityCertsPrefix = (kind: string, name: string): string => `${CERTS_PREFIX}${kind}/${name}/`;
export const issuedCertKey = (kind: string, name: string, serial: string): string => identityCertsPrefix(kind, name) + serial;
export const revokedKey = (serial: string): string => REVOKED_PREFIX + serial;
/** `value` must be canonical (lower-case MAC, canonicalIp text); base64's "/" becomes "_" (and "+" "-") so a key has no extra segment. */
export const hostIndexKey = (field: string, value: string): string =>
  `${HOST_INDEX_PREFIX}${field}/${value.replace(/\//g, '_').replace(/\+/g, '-')}`;

/** The last path segment of a key under `prefix`, or undefined for a key of another kind or a deeper key. */
export function nameFromKey(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  return rest && !rest.includes('/') ? rest : undefined;
}

/** "/weft/endpoints/<net>/<ip>" -> { network, ip }. IPv6 addresses contain ":" but never "/". */
export function parseEndpointKey(key: string): { network: string; ip: string } | undefined {
  if (!key.startsWith(ENDPOINTS_PREFIX)) return undefined;
  const parts = key.slice(ENDPOINTS_PREFIX.length).split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { network: parts[0], ip: parts[1] };
}
