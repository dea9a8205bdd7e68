// A real weft logger whose lines land in memory, parsed, so a test sees
// exactly what the daemon would print: level names, messages, and errors as
// pino's err serializer writes them (type, message, stack, code).
import pino from 'pino';
import { createLogger, type Logger } from '../../controller/common/log';

export type LogLine = { level: string; msg: string; err?: { type: string; message: string; stack: string; code?: unknown; [k: string]: unknown }; [k: string]: unknown };

export function captureLogger(level: 'trace' | 'debug' | 'info' = 'trace'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createLogger({
    level,
    destination: {
      write(s: string) {
        const o = JSON.parse(s) as Record<string, unknown>;
        lines.push({ ...o, level: pino.levels.labels[o.level as number] } as LogLine);
      },
    },
  });
  return { logger, lines };
}

/**
 * The keys that appear more than once in one object of a JSON text, as
 * "path.key". JSON.parse keeps the last silently, but log shippers differ,
 * so a daemon's line must never carry a key twice.
 */
export function duplicateJsonKeys(text: string): string[] {
  const dups: string[] = [];
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  };
  const str = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string): void => {
    ws();
    if (text[i] === '{') {
      i++;
      const seen = new Set<string>();
      for (ws(); text[i] !== '}'; ws()) {
        if (text[i] === ',') i++, ws();
        const k = str();
        if (seen.has(k)) dups.push(path ? `${path}.${k}` : k);
        seen.add(k);
        ws();
        i++; // ':'
        value(path ? `${path}.${k}` : k);
      }
      i++;
    } else if (text[i] === '[') {
      i++;
      for (ws(); text[i] !== ']'; ws()) {
        if (text[i] === ',') i++;
        value(`${path}[]`);
      }
      i++;
    } else if (text[i] === '"') str();
    else while (i < text.length && !',}] \t\r\n'.includes(text[i])) i++;
  };
  JSON.parse(text); // malformed text is an error of its own
  value('');
  return dups;
}
