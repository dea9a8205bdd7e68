// One nf_tables table seen and changed from this process: the generation id,
// a listing (chains with their rules' comments, sets, and the elements of the
// sets asked for), nft commands through libnftables, and element changes as
// weft's own batch. The reconcile above decides what to send; this module
// only knows how.
import { isErrno } from '../netlink/errors';
import { openHandle, type Handle } from '../netlink/handle';
import { openBatchSocket, type BatchSocket } from './batch';
import { openNft, type NftContext } from './libnftables';
import {
  NETLINK_NETFILTER, NFPROTO_UNSPEC, NFT_MSG, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_TABLE,
  NFTA_SET_NAME, NFTA_SET_TABLE, NFTA_TABLE_NAME, decodeChain, decodeElements, decodeGen, forEachElement, decodeRule, decodeSet, decodeTableHandle, nfgenmsg, nftType,
  type BatchMsg, type Elements, type SetInfo,
} from './wire';
import { nla } from '../netlink/codec';

export type TableView = {
  /** The generation the listing was taken at (the kernel bumps it on every committed transaction, anyone's). */
  gen: number;
  exists: boolean;
  /** The table's handle when it exists: a new one means the table was deleted and made again. */
  handle?: bigint;
  /** Chain name -> the comments of its rules, in order ('' for a rule without one). */
  chains: Map<string, string[]>;
  sets: Map<string, SetInfo>;
  /** Elements of the sets that were listed with their elements. */
  elements: Map<string, Elements>;
};

export type NftTable = {
  readonly name: string;
  readonly family: number;
  /** The ruleset generation id (NFT_MSG_GETGEN): one read, no transaction. */
  gen(): number;
  /** Chains, rules' comments and sets of the table; elements of the sets `withElements` picks: one consistent snapshot. */
  list(withElements: (set: string) => boolean): TableView;
  /**
   * `read` run until the generation is the same before and after it, so what
   * it read is one snapshot (the kernel has no read transaction). Taken again
   * at most `LIST_ATTEMPTS` times, then an error: the one retry policy of
   * every listing.
   */
  consistent<T>(read: (gen: number) => T, what: string): T;
  /** One pass over chains, rules' comments and sets (no elements), at no particular generation: call it inside consistent(). */
  structure(): Omit<TableView, 'gen'>;
  elements(set: string): Elements;
  /** Each element of a set, in no order, without collecting them (a set can hold millions); returns how many. */
  eachElement(set: string, fn: (key: string, data: string) => void): number;
  /**
   * The handles of the table and of the named sets (undefined: not there), one
   * request each: what a caller that just made them needs to tell them, at a
   * later listing, from sets someone else deleted and made again.
   */
  handles(sets: Iterable<string>): { table?: bigint; sets: Map<string, bigint> };
  /** nft commands as one transaction (libnftables). */
  run(cmds: string, what: string): void;
  /** weft's own messages as one transaction; returns bytes sent. */
  commit(msgs: BatchMsg[], what: string): number;
  /** Delete the whole table in one transaction; false when there was none. */
  drop(): boolean;
  close(): void;
};

/** Listings taken before giving up on a ruleset that changes under every one of them. */
const LIST_ATTEMPTS = 6;

export type NftTableOptions = { name: string; family: number; netns?: string };

export function openNftTable(o: NftTableOptions): NftTable {
  let handle: Handle | undefined;
  let batch: BatchSocket | undefined;
  let nft: NftContext | undefined;
  const h = () => (handle ??= openHandle({ netns: o.netns, protocol: NETLINK_NETFILTER }));

  function dumpOrEmpty(msg: number, body: Buffer, op: string) {
    try {
      return h().dump({ type: nftType(msg), body, op });
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return []; // no such table (yet)
      throw e;
    }
  }

  function dumpElements(set: string) {
    const body = Buffer.concat([nfgenmsg(o.family), nla.str(NFTA_SET_ELEM_LIST_TABLE, o.name), nla.str(NFTA_SET_ELEM_LIST_SET, set)]);
    return dumpOrEmpty(NFT_MSG.GETSETELEM, body, `nft list elements ${o.name} ${set}`);
  }

  function elements(set: string): Elements {
    return decodeElements(dumpElements(set));
  }

  function eachElement(set: string, fn: (key: string, data: string) => void): number {
    let n = 0;
    forEachElement(dumpElements(set), (k, d) => {
      n++;
      fn(k, d);
    });
    return n;
  }

  /** The table's handle, or undefined when there is no such table. */
  function tableHandle(): bigint | undefined {
    try {
      const r = h().exec({ type: nftType(NFT_MSG.GETTABLE), body: Buffer.concat([nfgenmsg(o.family), nla.str(NFTA_TABLE_NAME, o.name)]), op: `nft get table ${o.name}` });
      return decodeTableHandle(r) ?? 0n;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw e;
    }
  }

  function setHandle(set: string): bigint | undefined {
    try {
      const r = h().exec({ type: nftType(NFT_MSG.GETSET), body: Buffer.concat([nfgenmsg(o.family), nla.str(NFTA_SET_TABLE, o.name), nla.str(NFTA_SET_NAME, set)]), op: `nft get set ${o.name} ${set}` });
      for (const m of r) if ((m.type & 0xff) === NFT_MSG.NEWSET) return decodeSet(m).handle;
      return undefined;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw e;
    }
  }

  function gen(): number {
    const replies = h().exec({ type: nftType(NFT_MSG.GETGEN), body: nfgenmsg(NFPROTO_UNSPEC), op: 'nft get generation' });
    const g = decodeGen(replies);
    if (g === undefined) throw new Error('nft get generation: no NEWGEN in the reply');
    return g;
  }

  function consistent<T>(read: (gen: number) => T, what: string): T {
    for (let attempt = 1; ; attempt++) {
      const before = gen();
      const r = read(before);
      if (gen() === before) return r;
      if (attempt === LIST_ATTEMPTS) throw new Error(`${what}: the ruleset changed during each of ${LIST_ATTEMPTS} listings`);
    }
  }

  function structure(): Omit<TableView, 'gen'> {
    const handle = tableHandle();
    const exists = handle !== undefined;
    const view: Omit<TableView, 'gen'> = { exists, handle, chains: new Map(), sets: new Map(), elements: new Map() };
    if (!exists) return view;
    for (const m of dumpOrEmpty(NFT_MSG.GETCHAIN, Buffer.concat([nfgenmsg(o.family), nla.str(NFTA_CHAIN_TABLE, o.name)]), `nft list chains ${o.name}`)) {
      const c = decodeChain(m);
      if (c.table === o.name) view.chains.set(c.name, []);
    }
    for (const m of dumpOrEmpty(NFT_MSG.GETRULE, Buffer.concat([nfgenmsg(o.family), nla.str(NFTA_RULE_TABLE, o.name)]), `nft list rules ${o.name}`)) {
      const r = decodeRule(m);
      if (r.table === o.name) view.chains.get(r.chain)?.push(r.comment ?? '');
    }
    for (const m of dumpOrEmpty(NFT_MSG.GETSET, Buffer.concat([nfgenmsg(o.family), nla.str(NFTA_SET_TABLE, o.name)]), `nft list sets ${o.name}`)) {
      const s = decodeSet(m);
      if (s.table === o.name) view.sets.set(s.name, s);
    }
    return view;
  }

  function list(withElements: (set: string) => boolean): TableView {
    return consistent((g) => {
      const v = structure();
      for (const s of v.sets.keys()) if (withElements(s)) v.elements.set(s, elements(s));
      return { gen: g, ...v };
    }, `nft list ${o.name}`);
  }

  return {
    name: o.name,
    family: o.family,
    gen,
    list,
    consistent,
    structure,
    elements,
    eachElement,
    handles(sets) {
      const out = new Map<string, bigint>();
      for (const s of sets) {
        const hd = setHandle(s);
        if (hd !== undefined) out.set(s, hd);
      }
      return { table: tableHandle(), sets: out };
    },
    run(cmds, what) {
      (nft ??= openNft(o.netns)).run(cmds, what);
    },
    commit(msgs, what) {
      return (batch ??= openBatchSocket(o.netns)).commit(msgs, what);
    },
    drop() {
      const msg = { type: nftType(NFT_MSG.DELTABLE), flags: 0, body: Buffer.concat([nfgenmsg(o.family), nla.str(NFTA_TABLE_NAME, o.name)]) };
      try {
        (batch ??= openBatchSocket(o.netns)).commit([msg], `nft delete table ${o.name}`);
        return true;
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return false;
        throw e;
      }
    },
    close() {
      handle?.close();
      batch?.close();
      nft?.close();
      handle = undefined;
      batch = undefined;
      nft = undefined;
    },
  };
}
