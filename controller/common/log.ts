// Logging, one way for every role: pino's Logger is the only logger type,
// `silentLogger` stands in where a caller passes none, and `createLogger`
// makes the daemons' loggers. An error goes under `err` as the error itself
// (`log.warn({ err }, '...')`), never its message: pino's err serializer then
// writes its type, message, stack, code and cause.
import pino, { type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger };

/** Writes nothing, costs next to nothing: the default wherever a logger is optional. */
export const silentLogger: Logger = pino({ level: 'silent' }, { write() {} });

export type LoggerOptions = {
  level: Level | 'silent';
  /** Fields on every line besides pid, e.g. the agent's host name. */
  base?: Record<string, unknown>;
  /** Default: stdout, written synchronously so the lines before an exit or a crash are not lost. */
  destination?: DestinationStream;
};

/** A daemon's logger: one JSON object per line. */
export function createLogger(o: LoggerOptions): Logger {
  return pino(
    { level: o.level, base: { pid: process.pid, ...o.base }, serializers: { err: pino.stdSerializers.err } },
    o.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
