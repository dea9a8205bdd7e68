// `weft explain`'s output: numbered hops for people, one JSON document for
// scripts, and the exit status (0: the path is complete, 1: it breaks).
import type { Explanation, Hop } from './verdicts';

const MARK: Record<Hop['verdict'], string> = { ok: 'ok  ', warn: 'WARN', drop: 'DROP' };

export function renderText(e: Explanation): string {
  const lines = [`${e.src} -> ${e.dst}${e.size !== undefined ? `, ${e.size}-byte packets` : ''}`];
  const width = String(e.hops.length).length;
  for (const [i, h] of e.hops.entries()) {
    const mtu = h.mtu !== undefined ? ` [mtu ${h.mtu}]` : '';
    lines.push(`${String(i + 1).padStart(width)}. ${MARK[h.verdict]} ${h.kind.padEnd(9)} ${h.host}: ${h.what}${mtu}`);
    const pad = ' '.repeat(width + 2 + 5);
    lines.push(`${pad}(${h.source})`);
    if (h.why) lines.push(`${pad}${h.verdict === 'ok' ? 'note' : 'why'}: ${h.why}`);
    if (h.fix && h.verdict !== 'ok') lines.push(`${pad}fix: ${h.fix}`);
  }
  if (e.break) {
    const n = e.hops.indexOf(e.break) + 1;
    lines.push('', `BREAK at hop ${n} (${e.break.kind} on ${e.break.host}): ${e.break.why}`, `fix: ${e.break.fix}`);
  } else {
    lines.push('', `path complete: ${e.hops.length} hops`);
  }
  return lines.join('\n') + '\n';
}

export function renderJson(e: Explanation): string {
  return JSON.stringify({ ...e, break: e.break ? { hop: e.hops.indexOf(e.break) + 1, ...e.break } : null }, null, 2) + '\n';
}

export const exitCodeOf = (e: Explanation) => (e.complete ? 0 : 1);
