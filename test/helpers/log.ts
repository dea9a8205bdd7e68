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
