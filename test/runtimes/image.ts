// The test image, built without any registry: a rootfs holding Debian's
// static busybox (so no libc is needed inside) and one symlink per applet,
// packed as a docker-archive by hand. Both `podman load` and
// `ctr image import` read that format, so one file serves both runtimes.
// The archive is cached in the temp dir, keyed by the busybox binary, so a
// machine builds it once.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const IMAGE_REF = 'localhost/wt-busybox:latest';
const BUSYBOX = '/bin/busybox';
// Bump when the image layout changes, so a stale cached archive is not reused.
const LAYOUT_VERSION = '2';

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Path of the docker-archive of IMAGE_REF, built on first use. */
export function busyboxImageArchive(): string {
  const bin = readFileSync(BUSYBOX);
  const key = sha256(Buffer.concat([bin, Buffer.from(LAYOUT_VERSION)])).slice(0, 16);
  const cacheDir = join(tmpdir(), 'wt-image-cache');
  const archive = join(cacheDir, `wt-busybox-${key}.tar`);
  if (existsSync(archive)) return archive;
  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(join(cacheDir, 'wtbuild-'));
  try {
    const layer = buildLayer(work);
    const out = join(work, 'image.tar');
    packDockerArchive(work, layer, out);
    // Atomic publish: a concurrent builder either sees nothing or a whole file.
    renameSync(out, archive);
    return archive;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function buildLayer(work: string): string {
  const root = join(work, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'www', 'root']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  writeFileSync(join(root, 'www/index.html'), 'wt-busybox\n');
  const layer = join(work, 'layer.tar');
  // Fixed owner, order and times: the same busybox gives the same image id.
  execFileSync('tar', ['-C', root, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-cf', layer, '.']);
  return layer;
}

function packDockerArchive(work: string, layer: string, out: string): void {
  const diffId = sha256(readFileSync(layer));
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: '1970-01-01T00:00:00Z',
    config: { Env: ['PATH=/bin'], Cmd: ['sh'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: 'weft test image: busybox-static' }],
  });
  const configId = sha256(config);
  const dir = join(work, 'archive');
  mkdirSync(join(dir, diffId), { recursive: true });
  renameSync(layer, join(dir, diffId, 'layer.tar'));
  writeFileSync(join(dir, `${configId}.json`), config);
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify([{ Config: `${configId}.json`, RepoTags: [IMAGE_REF], Layers: [`${diffId}/layer.tar`] }]),
  );
  execFileSync('tar', ['-C', dir, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-cf', out, 'manifest.json', `${configId}.json`, diffId]);
}
