// libnftables (the library behind `nft`), bound through koffi: nft's own
// parser and evaluator for the commands whose encoding is involved (tables,
// chains, rules with hash/map/nat expressions, set declarations), run in this
// process instead of spawning `nft`. The library is loaded on first use so
// importing this module costs nothing where nftables is not installed.
import koffi from 'koffi';
import { WeftError, type ErrnoName } from '../netlink/errors';
import { withNetns } from '../netlink/netns';

type Lib = {
  ctxNew: (flags: number) => unknown;
  ctxFree: (ctx: unknown) => void;
  bufferOutput: (ctx: unknown) => number;
  bufferError: (ctx: unknown) => number;
  run: (ctx: unknown, cmd: string) => number;
  output: (ctx: unknown) => string | null;
  error: (ctx: unknown) => string | null;
};

let lib: Lib | undefined;

function load(): Lib {
  if (lib) return lib;
  let so: koffi.IKoffiLib;
  try {
    so = koffi.load('libnftables.so.1');
  } catch (e) {
    throw new NftError('ENOENT', 'libnftables.so.1 cannot be loaded (install libnftables1)', { cause: e });
  }
  koffi.opaque('nft_ctx');
  lib = {
    ctxNew: so.func('nft_ctx *nft_ctx_new(uint32_t flags)'),
    ctxFree: so.func('void nft_ctx_free(nft_ctx *ctx)'),
    bufferOutput: so.func('int nft_ctx_buffer_output(nft_ctx *ctx)'),
    bufferError: so.func('int nft_ctx_buffer_error(nft_ctx *ctx)'),
    run: so.func('int nft_run_cmd_from_buffer(nft_ctx *ctx, const char *buf)'),
    output: so.func('const char *nft_ctx_get_output_buffer(nft_ctx *ctx)'),
    error: so.func('const char *nft_ctx_get_error_buffer(nft_ctx *ctx)'),
  };
  return lib;
}

// nft reports the kernel's refusal as strerror text; the errno name is the
// stable code callers match on.
const STRERROR: Array<[RegExp, ErrnoName]> = [
  [/No such file or directory/, 'ENOENT'],
  [/File exists/, 'EEXIST'],
  [/Device or resource busy/, 'EBUSY'],
  [/Operation not permitted/, 'EPERM'],
  [/Operation not supported/, 'EOPNOTSUPP'],
  [/No buffer space available/, 'ENOBUFS'],
  [/Cannot allocate memory/, 'ENOMEM'],
];

/** libnftables refused a command: `code` is the kernel's errno name when it said one, else EINVAL (nft's own parser or evaluator). */
export class NftError extends WeftError {
  readonly output: string;
  constructor(code: ErrnoName, message: string, options?: { cause?: unknown; output?: string }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NftError';
    this.output = options?.output ?? '';
  }
}

export type NftContext = {
  /** Run nft commands (the `nft -f` language) as one transaction; returns nft's output. Throws NftError. */
  run(cmds: string, what: string): string;
  close(): void;
};

/** A libnftables context acting in `netns` (a name or path), or in the current namespace. */
export function openNft(netns?: string): NftContext {
  const l = load();
  const inNs = <T>(fn: () => T): T => (netns ? withNetns(netns, fn) : fn());
  const ctx = inNs(() => l.ctxNew(0));
  if (!ctx) throw new NftError('ENOMEM', 'nft_ctx_new failed');
  l.bufferOutput(ctx);
  l.bufferError(ctx);
  let closed = false;
  return {
    run(cmds, what) {
      if (closed) throw new NftError('EBADF', `${what}: nft context closed`);
      // the library opens its netlink socket lazily in some versions: run in the namespace either way
      const rc = inNs(() => l.run(ctx, cmds));
      const out = l.output(ctx) ?? '';
      if (rc !== 0) {
        const err = (l.error(ctx) ?? '').trim();
        const code = STRERROR.find(([re]) => re.test(err))?.[1] ?? 'EINVAL';
        throw new NftError(code, `${what}: ${err.split('\n').slice(0, 6).join(' | ') || 'nft failed'}`, { output: err });
      }
      return out;
    },
    close() {
      if (!closed) {
        closed = true;
        l.ctxFree(ctx);
      }
    },
  };
}
