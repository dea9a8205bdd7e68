// What every doctor check hands back: a verdict, one line saying what it
// found, and for anything short of a pass the one thing to do about it.
// Plain data, so each area's verdict logic is a pure function of facts the
// command gathered, and the report is the same whether printed or --json.

export type Verdict = 'pass' | 'warn' | 'fail';

export type Finding = {
  /** The area the check belongs to: kernel, mtu, offload, iptables, overlay, links, controller, certificate, clock, agent. */
  area: string;
  /** What was checked, short: "vxlan", "weft.vx1", "FORWARD jump". */
  check: string;
  verdict: Verdict;
  message: string;
  /** What to do; absent on a pass. */
  fix?: string;
};

export const pass = (area: string, check: string, message: string): Finding => ({ area, check, verdict: 'pass', message });
export const warn = (area: string, check: string, message: string, fix: string): Finding => ({ area, check, verdict: 'warn', message, fix });
export const fail = (area: string, check: string, message: string, fix: string): Finding => ({ area, check, verdict: 'fail', message, fix });

/** 1 when anything failed (a warning alone does not), else 0. */
export function exitCodeOf(findings: readonly Finding[]): number {
  return findings.some((f) => f.verdict === 'fail') ? 1 : 0;
}

const LABEL: Record<Verdict, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' };

/** One line per finding, the fix indented under it, and a count at the end. */
export function renderText(findings: readonly Finding[]): string {
  const width = Math.max(0, ...findings.map((f) => `${f.area}/${f.check}`.length));
  const lines: string[] = [];
  for (const f of findings) {
    lines.push(`${LABEL[f.verdict]}  ${`${f.area}/${f.check}`.padEnd(width)}  ${f.message}`);
    if (f.fix) lines.push(`${' '.repeat(6 + width + 2)}fix: ${f.fix}`);
  }
  const n = (v: Verdict) => findings.filter((f) => f.verdict === v).length;
  lines.push('', `${n('pass')} passed, ${n('warn')} warnings, ${n('fail')} failed`);
  return lines.join('\n') + '\n';
}

export function renderJson(findings: readonly Finding[]): string {
  const n = (v: Verdict) => findings.filter((f) => f.verdict === v).length;
  return JSON.stringify({ ok: exitCodeOf(findings) === 0, passed: n('pass'), warnings: n('warn'), failed: n('fail'), findings }, null, 2) + '\n';
}
