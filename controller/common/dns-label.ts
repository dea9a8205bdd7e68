// The one name rule weft uses for hosts, racks, datacenters and networks:
// an RFC 1123 DNS label (so every name is also usable in a DNS name or a
// certificate SAN).
const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function isDnsLabel(s: unknown): s is string {
  return typeof s === 'string' && LABEL_RE.test(s);
}
