// Crash-safe, exclusive file creation for key material: a reader never sees a
// half-written key, and two processes racing to create the same file cannot
// overwrite each other (link(2) fails with EEXIST instead).
import { randomBytes } from 'node:crypto';
import { chmod, link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

async function writeTemp(path: string, data: string, mode: number): Promise<string> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    // open()'s mode is filtered by the umask; set the exact mode we promise.
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return tmp;
}

/** Creates `path` with `data` and `mode`; throws an EEXIST error if it already exists. */
export async function createExclusive(path: string, data: string, mode: number): Promise<void> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await link(tmp, path);
  } finally {
    await unlink(tmp).catch(() => {});
  }
  await syncDir(dirname(path));
}

/** Replaces `path` atomically (renewals): readers see the old file or the new one. */
export async function replaceAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await chmod(path, mode);
  await syncDir(dirname(path));
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
