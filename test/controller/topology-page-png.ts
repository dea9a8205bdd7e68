// Just enough PNG for the topology page's screenshot test: 8-bit RGB or RGBA,
// not interlaced (what Chromium writes), decoded to RGBA with node:zlib, and
// a few ways to look at the pixels.
import { inflateSync } from 'node:zlib';

export type Image = { width: number; height: number; rgba: Buffer };

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function decodePng(png: Buffer): Image {
  if (!png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG');
  let width = 0, height = 0, colorType = -1;
  const idat: Buffer[] = [];
  for (let off = 8; off < png.length;) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    off += 12 + len;
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, ct, , , interlace] = [data[8], data[9], data[10], data[11], data[12]];
      if (depth !== 8 || (ct !== 2 && ct !== 6) || interlace !== 0) throw new Error(`unsupported PNG: depth ${depth}, colour type ${ct}, interlace ${interlace}`);
      colorType = ct;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
  }
  const bpp = colorType === 6 ? 4 : 3;
  const stride = width * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  if (raw.length < height * (stride + 1)) throw new Error('PNG data too short');
  const cur = Buffer.alloc(stride);
  const prev = Buffer.alloc(stride);
  const rgba = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`bad PNG filter ${filter} on row ${y}`);
      cur[i] = (line[i]! + pred) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      rgba[(y * width + x) * 4] = cur[x * bpp]!;
      rgba[(y * width + x) * 4 + 1] = cur[x * bpp + 1]!;
      rgba[(y * width + x) * 4 + 2] = cur[x * bpp + 2]!;
      rgba[(y * width + x) * 4 + 3] = bpp === 4 ? cur[x * bpp + 3]! : 255;
    }
    cur.copy(prev);
  }
  return { width, height, rgba };
}

export const hexColor = (hex: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];

export type Region = { pixels: number; x0: number; y0: number; x1: number; y1: number };

/** Pixels within `tolerance` (per channel) of a colour, and the box around them; pixels 0 when none. */
export function regionOf(img: Image, color: [number, number, number], tolerance = 8): Region {
  const r: Region = { pixels: 0, x0: img.width, y0: img.height, x1: -1, y1: -1 };
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const o = (y * img.width + x) * 4;
      if (Math.abs(img.rgba[o]! - color[0]) > tolerance || Math.abs(img.rgba[o + 1]! - color[1]) > tolerance || Math.abs(img.rgba[o + 2]! - color[2]) > tolerance) continue;
      r.pixels++;
      if (x < r.x0) r.x0 = x;
      if (x > r.x1) r.x1 = x;
      if (y < r.y0) r.y0 = y;
      if (y > r.y1) r.y1 = y;
    }
  }
  return r;
}

/** How many distinct colours (quantised to 4 bits a channel) cover at least `min` pixels: a blank page has one or two. */
export function colourCount(img: Image, min = 50): number {
  const counts = new Map<number, number>();
  for (let o = 0; o < img.rgba.length; o += 4) {
    const k = ((img.rgba[o]! >> 4) << 8) | ((img.rgba[o + 1]! >> 4) << 4) | (img.rgba[o + 2]! >> 4);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts.values()].filter((n) => n >= min).length;
}
