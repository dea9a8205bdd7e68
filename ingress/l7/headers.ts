// Header rewriting both ways, in one pass over the raw header list each.
// Hop-by-hop headers (RFC 9110 7.6.1) describe one connection and must not
// cross the proxy: Connection and every header it names, Keep-Alive, TE,
// Trailer, Transfer-Encoding (Node de-chunks the request and undici
// re-frames it; the same on the way back), Upgrade (except on an upgrade),
// Proxy-Connection. Names are only lower-cased when their length is one we
// care about, so most headers cost a length compare.

/** What a request's headers say, as the proxy needs it. */
export type RequestHead = {
  /** The flat [name, value, ...] list for the backend, forwarding headers added. */
  headers: string[];
  host: string | undefined;
  /** A body follows (Content-Length > 0 or Transfer-Encoding). */
  hasBody: boolean;
  /** Content-Length when given, else -1. */
  contentLength: number;
  /** Why the head cannot be forwarded (400), or undefined. */
  invalid: string | undefined;
};

/**
 * The headers to send upstream for `raw` (IncomingMessage.rawHeaders).
 * `upgrade`: keep Upgrade and say `Connection: upgrade`.
 */
export function forwardRequestHeaders(raw: readonly string[], clientIp: string, upgrade: boolean): RequestHead {
  const out: string[] = [];
  let host: string | undefined;
  let xff: string | undefined;
  let connectionTokens: string | undefined;
  let hasBody = false;
  let contentLength = -1;
  let invalid: string | undefined;
  let upgradeValue: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    switch (name.length) {
      case 2: // te
      case 7: // trailer, upgrade
      case 10: // connection, keep-alive
      case 16: // proxy-connection, x-forwarded-host
      case 17: // transfer-encoding, x-forwarded-proto
      case 6: // expect: Node already answered 100-continue; undici refuses it
        {
          const lower = name.toLowerCase();
          if (lower === 'connection') {
            connectionTokens = connectionTokens === undefined ? value : `${connectionTokens},${value}`;
            continue;
          }
          if (lower === 'transfer-encoding') {
            hasBody = true;
            continue;
          }
          if (lower === 'upgrade') {
            upgradeValue = value;
            continue;
          }
          if (lower === 'te' || lower === 'trailer' || lower === 'keep-alive' || lower === 'proxy-connection' || lower === 'expect') continue;
          // replaced below: the client may not tell the backend what the edge saw
          if (lower === 'x-forwarded-host' || lower === 'x-forwarded-proto') continue;
        }
        break;
      case 4:
        if (name.toLowerCase() === 'host') {
          if (host !== undefined) invalid = 'duplicate Host header';
          host = value;
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') {
          // Node's parser has already refused conflicting lengths; undici refuses duplicates.
          if (contentLength >= 0) continue;
          contentLength = Number(value);
          if (contentLength > 0) hasBody = true;
        }
        break;
      case 15:
        if (name.toLowerCase() === 'x-forwarded-for') {
          xff = xff === undefined ? value : `${xff}, ${value}`;
          continue;
        }
        break;
    }
    out.push(name, value);
  }
  if (connectionTokens !== undefined) dropNamedBy(connectionTokens, out);
  if (upgrade && upgradeValue !== undefined) out.push('upgrade', upgradeValue, 'connection', 'upgrade');
  // Every listener of the proxy speaks plain HTTP (it terminates no TLS), so that is what the edge saw.
  out.push('x-forwarded-for', xff === undefined ? clientIp : `${xff}, ${clientIp}`, 'x-forwarded-proto', 'http');
  if (host !== undefined) out.push('x-forwarded-host', host);
  return { headers: out, host, hasBody, contentLength, invalid };
}

/** Removes from the flat list `out` the headers a Connection header names (other than the standard options). */
function dropNamedBy(tokens: string, out: string[]): void {
  // nearly every Connection header is one of these: no split, no second pass
  const t = tokens.length <= 10 ? tokens.toLowerCase() : '';
  if (t === 'keep-alive' || t === 'close' || t === 'upgrade') return;
  let named: string[] | undefined;
  for (const t of tokens.split(',')) {
    const n = t.trim().toLowerCase();
    if (n === '' || n === 'close' || n === 'keep-alive' || n === 'upgrade') continue;
    (named ??= []).push(n);
  }
  if (!named) return;
  let w = 0;
  for (let r = 0; r < out.length; r += 2) {
    if (named.includes(out[r].toLowerCase())) continue;
    out[w++] = out[r];
    out[w++] = out[r + 1];
  }
  out.length = w;
}

/**
 * The headers to send the client for a backend response (undici's raw
 * Buffer list, decoded latin1 as Node writes header bytes back out latin1,
 * so any byte survives). `close`: add `Connection: close` (we are draining).
 */
export function forwardResponseHeaders(raw: readonly Buffer[], close: boolean): string[] {
  const out: string[] = [];
  let connectionTokens: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1');
    switch (name.length) {
      case 2:
      case 7:
      case 10:
      case 16:
      case 17: {
        const lower = name.toLowerCase();
        if (lower === 'connection') {
          const v = raw[i + 1].toString('latin1');
          connectionTokens = connectionTokens === undefined ? v : `${connectionTokens},${v}`;
          continue;
        }
        if (lower === 'transfer-encoding' || lower === 'keep-alive' || lower === 'te' || lower === 'trailer' || lower === 'upgrade' || lower === 'proxy-connection') continue;
        break;
      }
    }
    out.push(name, raw[i + 1].toString('latin1'));
  }
  if (connectionTokens !== undefined) dropNamedBy(connectionTokens, out);
  if (close) out.push('connection', 'close');
  return out;
}

/** An HTTP/1.1 request head as bytes for a raw (upgrade) connection. */
export function serializeRequestHead(method: string, path: string, headers: readonly string[]): Buffer {
  let s = `${method} ${path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) s += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return Buffer.from(`${s}\r\n`, 'latin1');
}
