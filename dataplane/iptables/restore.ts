// Running iptables-restore / iptables-save, optionally inside a network
// namespace. The child is forked from inside withNetns, so it inherits the
// namespace of the calling thread without any `ip netns exec`.
import { spawnSync } from 'node:child_process';
import { WeftError } from '../netlink/errors';
import { withNetns } from '../netlink/netns';
import type { Family } from './model';

export type ExecOptions = {
  family?: Family;
  /** Namespace name (under /run/netns) or path; the current one when absent. */
  netns?: string;
  /** Seconds to wait for the xtables lock (-w). */
  lockWait?: number;
};

/** iptables-restore refused a document. Restore commits table by table, so tables before `table` may have been committed. */
export class IptablesRestoreError extends WeftError {
  readonly tool: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  /** The document line the tool blamed, 1-based, when it said. */
  readonly line?: number;
  readonly lineText?: string;
  /** The table whose block holds `line`. */
  readonly table?: string;

  constructor(p: { tool: string; exitCode: number | null; stderr: string; document: string }) {
    const line = blamedLine(p.stderr);
    const lines = p.document.split('\n');
    const lineText = line !== undefined ? lines[line - 1] : undefined;
    const table = line !== undefined ? lines.slice(0, line).reverse().find((l) => l.startsWith('*'))?.slice(1) : undefined;
    const summary = p.stderr.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('Try `')).join('; ');
    super('WEFT_IPTABLES_RESTORE_FAILED', `${p.tool} failed${line !== undefined ? ` at line ${line} ("${lineText}")` : ''}: ${summary || `exit code ${p.exitCode}`}`);
    this.name = 'IptablesRestoreError';
    this.tool = p.tool;
    this.exitCode = p.exitCode;
    this.stderr = p.stderr;
    this.line = line;
    this.lineText = lineText;
    this.table = table;
  }
}

/** iptables-save (or a spawn) failed outright. */
export class IptablesExecError extends WeftError {
  readonly tool: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(tool: string, exitCode: number | null, stderr: string, cause?: unknown) {
    super('WEFT_IPTABLES_EXEC_FAILED', `${tool} failed (exit ${exitCode}): ${stderr.trim() || String(cause ?? '')}`, { cause });
    this.name = 'IptablesExecError';
    this.tool = tool;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

// Parse-time errors say "Error occurred at line: N"; commit-time ones (nft backend) "line N: ...".
function blamedLine(stderr: string): number | undefined {
  const m = /Error occurred at line: (\d+)/.exec(stderr) ?? /(?:^|\n)\s*line (\d+):/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

function tool(base: 'restore' | 'save', family: Family = 4): string {
  return `${family === 6 ? 'ip6tables' : 'iptables'}-${base}`;
}

// root's PATH does not always carry the sbin directories (e.g. under some service managers)
const ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`, LC_ALL: 'C' };

function run(cmd: string, args: string[], input: string | undefined, netns?: string) {
  const go = () => spawnSync(cmd, args, { input, encoding: 'utf8', env: ENV, timeout: 60_000, maxBuffer: 64 << 20 });
  return netns ? withNetns(netns, go) : go();
}

/** Apply a document with `--noflush`: only what the document names changes. */
export function iptablesRestore(document: string, opts: ExecOptions = {}): void {
  const cmd = tool('restore', opts.family);
  const r = run(cmd, ['--noflush', '-w', String(opts.lockWait ?? 5)], document, opts.netns);
  if (r.error) throw new IptablesExecError(cmd, null, '', r.error);
  if (r.status !== 0) throw new IptablesRestoreError({ tool: cmd, exitCode: r.status, stderr: r.stderr, document });
}

export function iptablesSave(opts: ExecOptions & { table?: string } = {}): string {
  const cmd = tool('save', opts.family);
  const r = run(cmd, opts.table ? ['-t', opts.table] : [], undefined, opts.netns);
  if (r.error) throw new IptablesExecError(cmd, null, '', r.error);
  if (r.status !== 0) throw new IptablesExecError(cmd, r.status, r.stderr);
  return r.stdout;
}
