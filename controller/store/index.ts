// Picks the store from one URL, so every binary and test configures it the
// same way: the embedded SQLite file by default, etcd for a controller
// cluster.
import { resolve } from 'node:path';
import { WeftError } from '../common/errors';
import type { Store } from './types';
import type { SqliteStoreOptions } from './sqlite';
import type { EtcdStoreOptions } from './etcd';

export * from './types';
export type { SqliteStoreOptions, EtcdStoreOptions };

export const DEFAULT_STORE_URL = 'sqlite:/var/lib/weft/weft.db';

export type StoreLocation =
  | { kind: 'sqlite'; path: string }
  | { kind: 'etcd'; endpoints: string[] };

const FORMS = 'accepted forms: sqlite:/abs/path.db, sqlite:relative/path.db, etcd:http://host:port[,http://host:port...]';

export class StoreUrlError extends WeftError {
  constructor(url: string, why: string) {
    super('WEFT_STORE_URL_INVALID', `invalid store URL ${JSON.stringify(url)}: ${why} (${FORMS})`);
    this.name = 'StoreUrlError';
  }
}

/** Relative SQLite paths resolve against `cwd` (default: the process's). */
export function parseStoreUrl(url: string, cwd = process.cwd()): StoreLocation {
  if (typeof url !== 'string' || url.trim() === '') throw new StoreUrlError(String(url), 'empty');
  const colon = url.indexOf(':');
  const scheme = colon < 0 ? '' : url.slice(0, colon);
  const rest = url.slice(colon + 1);
  switch (scheme) {
    case 'sqlite': {
      // sqlite:///abs/path is the URL spelling of sqlite:/abs/path
      const path = rest.startsWith('///') ? rest.slice(2) : rest;
      if (path === '' || path.startsWith('//')) throw new StoreUrlError(url, 'no file path after "sqlite:"');
      if (path.endsWith('/')) throw new StoreUrlError(url, 'the path names a directory, not a database file');
      return { kind: 'sqlite', path: resolve(cwd, path) };
    }
    case 'etcd': {
      const endpoints = rest.split(',').map((e) => e.trim());
      if (endpoints.length === 0 || endpoints.some((e) => e === '')) throw new StoreUrlError(url, 'empty etcd endpoint');
      for (const e of endpoints) {
        let u: URL;
        try {
          u = new URL(e);
        } catch {
          throw new StoreUrlError(url, `etcd endpoint "${e}" is not a URL`);
        }
        if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.port || (u.pathname !== '/' && u.pathname !== '')) {
          throw new StoreUrlError(url, `etcd endpoint "${e}" must be http(s)://host:port`);
        }
      }
      return { kind: 'etcd', endpoints };
    }
    default:
      throw new StoreUrlError(url, scheme ? `unknown scheme "${scheme}"` : 'no scheme');
  }
}

export async function openStore(
  url: string = DEFAULT_STORE_URL,
  opts: { sqlite?: SqliteStoreOptions; etcd?: EtcdStoreOptions } = {},
): Promise<Store> {
  const loc = parseStoreUrl(url);
  // Each store's driver is loaded only when that store is opened: etcd3 alone
  // costs ~0.3 s of start-up that a SQLite controller or `weft token --help`
  // should not pay.
  if (loc.kind === 'sqlite') return (await import('./sqlite')).openSqliteStore(loc.path, opts.sqlite);
  return (await import('./etcd')).openEtcdStore(loc.endpoints, opts.etcd);
}
