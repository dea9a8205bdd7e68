// The SQLite store's files are private to the controller's user: created
// 0600 (the file, its -wal and -shm) whatever the umask and the data
// directory's mode, and an existing file open to others is narrowed on open,
// with a log line saying so.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../controller/store/sqlite';
import { captureLogger } from '../helpers/log';

const modeOf = (p: string) => `0${(statSync(p).mode & 0o777).toString(8)}`;

describe('SQLite store file modes', () => {
  let dir: string;
  let umask: number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-store-mode-'));
    // a data directory that already exists, open to all, and a umask that narrows nothing
    chmodSync(dir, 0o755);
    umask = process.umask(0);
  });
  afterEach(() => {
    process.umask(umask);
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates weft.db and its -wal and -shm 0600 in an existing 0755 directory under umask 0', async () => {
    const path = join(dir, 'weft.db');
    const { logger, lines } = captureLogger();
    const store = openSqliteStore(path, { logger });
    try {
      await store.put('/k', 'v');
      expect([modeOf(path), modeOf(`${path}-wal`), modeOf(`${path}-shm`)]).toEqual(['0600', '0600', '0600']);
    } finally {
      await store.close();
    }
    expect(lines).toEqual([]); // nothing to narrow on a new file
  });

  it('narrows an existing store open to others to 0600 on open, and logs it', async () => {
    const sub = join(dir, 'data');
    mkdirSync(sub, { mode: 0o755 });
    const path = join(sub, 'weft.db');
    const first = openSqliteStore(path);
    await first.put('/k', 'v');
    await first.close();
    chmodSync(path, 0o644);
    writeFileSync(`${path}-wal`, '', { mode: 0o666 });
    chmodSync(`${path}-wal`, 0o666);

    const { logger, lines } = captureLogger();
    const store = openSqliteStore(path, { logger });
    try {
      expect(await store.get('/k')).toMatchObject({ value: 'v' });
      expect([modeOf(path), modeOf(`${path}-wal`)]).toEqual(['0600', '0600']);
    } finally {
      await store.close();
    }
    expect(lines.map((l) => [l.level, l.msg, l.path, l.mode])).toEqual([
      ['warn', 'store file was readable by other users; its mode is now 0600', path, '0644'],
      ['warn', 'store file was readable by other users; its mode is now 0600', `${path}-wal`, '0666'],
    ]);
  });
});
