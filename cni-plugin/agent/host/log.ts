// The slice of a logger the dataplane needs; a pino Logger fits it.
export type Log = {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
};

export const silentLog: Log = { info() {}, warn() {} };
