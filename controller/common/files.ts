// Crash-safe, exclusive file creation for key material: a reader never sees a
// half-written key, and two processes racing to create the same file cannot
// overwrite each other (link(2) fails with EEXIST instead).
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
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

/** fsync a directory, so a rename or link in it is durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * replaceAtomic for callers that cannot await (install-cni, the agent's
 * conflist labels): a temp file beside `path`, written, chmod'ed (open()
 * applied the umask) and fsynced, then renamed over it, then the directory
 * fsynced where the file system allows. A reader sees the old file or the
 * new one, never a part.
 */
export function replaceAtomicSync(path: string, content: string | Buffer, mode: number): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  const b = typeof content === 'string' ? Buffer.from(content) : content;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, mode);
    for (let off = 0; off < b.length; ) off += writeSync(fd, b, off);
    fchmodSync(fd, mode);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw e;
  }
  try {
    const dfd = openSync(dir, constants.O_RDONLY);
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    /* some file systems cannot fsync a directory; the rename itself is still atomic */
  }
}
