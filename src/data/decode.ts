// Image files -> 8-bit RGB pixels. JPEGs go to libjpeg-turbo in the addon (the decoder PIL uses, so the pixels
// of the reference's Image.open(f).convert('RGB'), in a quarter of sharp's time per image); sharp takes every
// file libjpeg declines (other formats, CMYK, data it warns about) and every EXIF-rotated one, which it turns
// upright, so a file decodes the same whichever path it takes.
import sharp from 'sharp';
import { readFile } from 'node:fs/promises';
import { loadAddon } from '../torch/addon.js';

const { decodeJpeg } = loadAddon();

export interface RGB {
  /** height x width x 3 bytes, row-major */
  data: Uint8Array;
  width: number;
  height: number;
}

/** The EXIF orientation of a JPEG (1, upright, when it has none): APP1 "Exif", TIFF IFD0, tag 0x0112. */
export function exifOrientation(b: Uint8Array): number {
  let at = 2;
  while (at + 4 <= b.length && b[at] === 0xff) {
    const marker = b[at + 1];
    const length = (b[at + 2] << 8) | b[at + 3];
    if (marker === 0xda || marker === 0xd9) break; // start of scan / end of image: no more headers
    const seg = at + 4;
    if (marker === 0xe1 && seg + 14 <= b.length && String.fromCharCode(...b.subarray(seg, seg + 4)) === 'Exif') {
      const tiff = seg + 6;
      const little = b[tiff] === 0x49;
      const u16 = (o: number) => (little ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1]);
      const u32 = (o: number) => (little ? u16(o) + u16(o + 2) * 65536 : u16(o) * 65536 + u16(o + 2));
      const ifd = tiff + u32(tiff + 4);
      const end = Math.min(seg + length - 2, b.length);
      if (ifd + 2 > end) return 1;
      for (let i = 0, n = u16(ifd); i < n && ifd + 2 + 12 * i + 12 <= end; i++) {
        const entry = ifd + 2 + 12 * i;
        if (u16(entry) === 0x0112) return u16(entry + 8);
      }
      return 1;
    }
    at = seg + length - 2;
  }
  return 1;
}

/** PIL's limit (DecompressionBombError above 2 x Image.MAX_IMAGE_PIXELS): a larger image is refused, as the
 * reference's loader refuses it, before its pixels are allocated (native/jpeg.cc has the same). */
export const MAX_PIXELS = 2 * 89_478_485;

/** A sharp pipeline that reads `input` as 8-bit sRGB without alpha, upright by its EXIF orientation. */
export const sharpRGB = (input: string | Buffer) =>
  sharp(input, { failOn: 'error', limitInputPixels: MAX_PIXELS }).rotate().removeAlpha().toColourspace('srgb');

const isJpeg = (b: Uint8Array) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/** Decodes an image file to 8-bit RGB (grayscale and alpha images converted), honouring EXIF orientation. */
export async function decodeRGB(path: string): Promise<RGB> {
  const bytes = await readFile(path);
  if (decodeJpeg && isJpeg(bytes) && exifOrientation(bytes) === 1) {
    try {
      return decodeJpeg(bytes);
    } catch {
      /* sharp judges it */
    }
  }
  const { data, info } = await sharpRGB(bytes).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
  // a copy of our own, so that it can be transferred between threads (sharp's buffers may be external memory)
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}
