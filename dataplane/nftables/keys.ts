// How nf_tables lays out the keys and data of weft's maps, as hex strings the
// way libnftables' JSON and the netlink wire carry them: the ingress writes
// them, the agent's `weft explain` reads them back.

export function ipv4Hex(ip: string): string {
  return Buffer.from(ip.split('.').map(Number)).toString('hex');
}

/** `inet_service`: 2 bytes, network order. */
export function portHex(port: number): string {
  return port.toString(16).padStart(4, '0');
}

/** The port half of a class map's key: `inet_service` in 2 bytes, padded to 4 (the registers are 32 bits). */
export function portKeyHex(port: number): string {
  return `${portHex(port)}0000`;
}

/** Concatenated `ipv4_addr . inet_service`: 4 bytes, then the port in 2 bytes padded to 4 (the registers are 32 bits). */
export function addrPortHex(ip: string, port: number): string {
  return `${ipv4Hex(ip)}${portHex(port)}0000`;
}

/** The address and port of an `ipv4_addr . inet_service` value (a `v:` prefix, as the maps' data carry, is allowed); undefined when it is not one. */
export function decodeAddrPort(v: string): { ip: string; port: number } | undefined {
  const hex = v.startsWith('v:') ? v.slice(2) : v;
  if (hex.length !== 16) return undefined;
  const b = Buffer.from(hex, 'hex');
  return { ip: `${b[0]}.${b[1]}.${b[2]}.${b[3]}`, port: b.readUInt16BE(4) };
}

/** The table the ingress's L4 path owns unless told otherwise (`weft ingress --nft-table`). */
export const DEFAULT_INGRESS_TABLE = 'weft-ingress';
