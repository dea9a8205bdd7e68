// The agent's state DB: one SQLite file in the state dir, shared by the
// address store (ipam_*) and the endpoint outbox (outbox_*), each owning its
// tables and opening its own connection. What either writes was promised to
// a runtime or the controller, so it must survive a crash or a power cut.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { DEFAULT_STATE_DIR } from './paths';

export const AGENT_DB_FILE = 'agent.db';

/** Where the agent keeps it: `<state dir>/agent.db`. */
export function agentDbPath(stateDir: string = DEFAULT_STATE_DIR): string {
  return join(stateDir, AGENT_DB_FILE);
}

/** Opens (creating it and its directory, 0700) the DB at `path`: WAL, synchronous=FULL, busy timeout. */
export function openAgentDb(path: string, busyTimeoutMs = 5000): Database.Database {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path);
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}
