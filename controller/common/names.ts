// What may appear in a certificate: host names are DNS-style so they are
// unambiguous inside a URI SAN and a CN, and carry no characters that would
// need escaping in either.
import { isDnsLabel } from './dns-label';
import { isIP } from 'node:net';

/** A DNS name: dot-separated labels of [a-z0-9-], at most 253 characters, lower case. */
export function isDnsName(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split('.').every(isDnsLabel);
}

export const HOST_FORM = 'a lower-case DNS name: labels of a-z, 0-9 and "-", not starting or ending with "-", at most 253 characters';

/** The `weft://host/<name>` URI that names a host in its client certificate. */
export const HOST_URI_PREFIX = 'weft://host/';

export function hostUri(host: string): string {
  return HOST_URI_PREFIX + host;
}

export type SanName = { type: 'dns' | 'ip'; value: string };

/** The SAN `name` stands for: an IP address (bracketed or not) or a DNS name (lower-cased); undefined when it is neither. */
export function sanName(name: string): SanName | undefined {
  const ip = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  if (isIP(ip)) return { type: 'ip', value: ip };
  const dns = name.toLowerCase();
  return isDnsName(dns) ? { type: 'dns', value: dns } : undefined;
}

/** Sorts a name list into DNS and IP SANs; throws naming the first bad entry. */
export function sanNames(names: string[]): SanName[] {
  if (!Array.isArray(names) || names.length === 0) throw new Error('a server certificate needs at least one name (DNS name or IP address)');
  const out: SanName[] = [];
  const seen = new Set<string>();
  for (const raw of names) {
    if (typeof raw !== 'string') throw new Error(`server name ${JSON.stringify(raw)} is not a string`);
    const san = sanName(raw.trim());
    if (!san) throw new Error(`server name ${JSON.stringify(raw)} is neither an IP address nor ${HOST_FORM}`);
    const k = `${san.type}:${san.value}`;
    if (!seen.has(k)) out.push(san);
    seen.add(k);
  }
  return out;
}
