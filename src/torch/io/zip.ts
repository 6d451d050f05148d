// The zip container of torch.save (>= 1.6): reading entries in place by offset, and writing stored (not
// compressed) entries with zip64 where sizes need it, data aligned to 64 bytes as PyTorch aligns it.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';

export class ZipError extends Error {}

export interface ZipEntry {
  name: string;
  /** Offset of the entry's data in the file. */
  offset: number;
  size: number;
  method: number;
}

function readAt(fd: number, position: number, length: number, fileSize: number, what: string): Buffer {
  if (position < 0 || length < 0 || position + length > fileSize) {
    throw new ZipError(`${what} lies outside the file (${position}+${length} > ${fileSize} bytes): the file is truncated or corrupt`);
  }
  const b = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, b, got, length - got, position + got);
    if (n === 0) throw new ZipError(`unexpected end of file reading ${what}`);
    got += n;
  }
  return b;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

/** True when the file starts like a zip archive. */
export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

/** Lists the entries of the zip file open as `fd` (every offset checked against the file's size). */
export function readZipDirectory(fd: number): Map<string, ZipEntry> {
  const fileSize = fstatSync(fd).size;
  const tailLen = Math.min(fileSize, 65535 + 22);
  const tail = readAt(fd, fileSize - tailLen, tailLen, fileSize, 'the end of central directory');
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipError('no zip end-of-central-directory record: the file is truncated or not a zip archive');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const locPos = fileSize - tailLen + eocd - 20;
    const loc = readAt(fd, locPos, 20, fileSize, 'the zip64 locator');
    if (loc.readUInt32LE(0) !== SIG_LOCATOR64) throw new ZipError('zip64 locator missing');
    const rec = readAt(fd, Number(loc.readBigUInt64LE(8)), 56, fileSize, 'the zip64 end record');
    if (rec.readUInt32LE(0) !== SIG_EOCD64) throw new ZipError('zip64 end record missing');
    count = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
  }
  const cd = readAt(fd, cdOffset, cdSize, fileSize, 'the central directory');
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) throw new ZipError(`central directory entry ${i} is corrupt`);
    const method = cd.readUInt16LE(p + 10);
    let size = cd.readUInt32LE(p + 20);
    let compressed = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let local = cd.readUInt32LE(p + 42);
    if (p + 46 + nameLen + extraLen > cd.length) throw new ZipError(`central directory entry ${i} is corrupt`);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    // zip64 extra field: the 0xffffffff fields, in order, as 64-bit values
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen; ) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        const next = () => {
          const v = Number(cd.readBigUInt64LE(q));
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressed === 0xffffffff) compressed = next();
        if (local === 0xffffffff) local = next();
      }
      e += 4 + len;
    }
    const lh = readAt(fd, local, 30, fileSize, `the local header of ${name}`);
    if (lh.readUInt32LE(0) !== SIG_LOCAL) throw new ZipError(`local header of ${name} is corrupt`);
    const offset = local + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
    if (offset + compressed > fileSize) {
      throw new ZipError(`entry ${name} ends at ${offset + compressed}, past the end of the file (${fileSize} bytes): truncated`);
    }
    entries.set(name, { name, offset, size: compressed, method });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** Reads a whole (stored) entry. */
export function readEntry(fd: number, e: ZipEntry): Buffer {
  if (e.method !== 0) throw new ZipError(`entry ${e.name} is compressed (method ${e.method}); torch files store entries uncompressed`);
  return readAt(fd, e.offset, e.size, fstatSync(fd).size, e.name);
}

/** Writes a zip file entry by entry, streaming each entry's data once. */
export class ZipWriter {
  readonly #fd: number;
  #pos = 0;
  readonly #central: Buffer[] = [];
  #count = 0;

  constructor(path: string) {
    this.#fd = openSync(path, 'w');
  }

  #write(b: Uint8Array): void {
    let off = 0;
    while (off < b.length) off += writeSync(this.#fd, b, off, b.length - off, this.#pos + off);
    this.#pos += b.length;
  }

  /** Adds an entry whose data is `chunks` concatenated. */
  add(name: string, ...chunks: Uint8Array[]): void {
    const nameBytes = Buffer.from(name, 'utf8');
    const size = chunks.reduce((n, c) => n + c.length, 0);
    let crc = 0;
    for (const c of chunks) crc = crc32(c, crc);
    const big = size >= 0xffffffff || this.#pos >= 0xffffffff;
    // local header: zip64 sizes when needed, then padding so that the data starts on a 64-byte boundary
    const zip64Local = big ? 20 : 0;
    const base = this.#pos + 30 + nameBytes.length + zip64Local + 4;
    const pad = (64 - (base % 64)) % 64;
    const extra = Buffer.alloc(zip64Local + 4 + pad);
    let x = 0;
    if (big) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(16, 2);
      extra.writeBigUInt64LE(BigInt(size), 4);
      extra.writeBigUInt64LE(BigInt(size), 12);
      x = 20;
    }
    extra.writeUInt16LE(0x5346, x);
    extra.writeUInt16LE(pad, x + 2); // 'FS': PyTorch's alignment padding
    const local = Buffer.alloc(30);
    local.writeUInt32LE(SIG_LOCAL, 0);
    local.writeUInt16LE(big ? 45 : 20, 4);
    local.writeUInt16LE(0, 6);
    local.writeUInt16LE(0, 8); // flags, stored
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12); // time, date (1980-01-01)
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(big ? 0xffffffff : size, 18);
    local.writeUInt32LE(big ? 0xffffffff : size, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const headerPos = this.#pos;
    this.#write(local);
    this.#write(nameBytes);
    this.#write(extra);
    for (const c of chunks) this.#write(c);

    const cext = big || headerPos >= 0xffffffff ? Buffer.alloc(28) : Buffer.alloc(0);
    if (cext.length) {
      cext.writeUInt16LE(0x0001, 0);
      cext.writeUInt16LE(24, 2);
      cext.writeBigUInt64LE(BigInt(size), 4);
      cext.writeBigUInt64LE(BigInt(size), 12);
      cext.writeBigUInt64LE(BigInt(headerPos), 20);
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(SIG_CENTRAL, 0);
    c.writeUInt16LE(cext.length ? 45 : 20, 4);
    c.writeUInt16LE(cext.length ? 45 : 20, 6);
    c.writeUInt16LE(0, 8);
    c.writeUInt16LE(0, 10);
    c.writeUInt16LE(0, 12);
    c.writeUInt16LE(0x21, 14);
    c.writeUInt32LE(crc >>> 0, 16);
    c.writeUInt32LE(cext.length ? 0xffffffff : size, 20);
    c.writeUInt32LE(cext.length ? 0xffffffff : size, 24);
    c.writeUInt16LE(nameBytes.length, 28);
    c.writeUInt16LE(cext.length, 30);
    c.writeUInt32LE(cext.length ? 0xffffffff : headerPos, 42);
    this.#central.push(c, nameBytes, cext);
    this.#count++;
  }

  /** Writes the central directory and closes the file. */
  close(): void {
    const cdStart = this.#pos;
    for (const b of this.#central) this.#write(b);
    const cdSize = this.#pos - cdStart;
    const zip64 = this.#count >= 0xffff || cdStart >= 0xffffffff || cdSize >= 0xffffffff;
    if (zip64) {
      const rec = Buffer.alloc(56);
      rec.writeUInt32LE(SIG_EOCD64, 0);
      rec.writeBigUInt64LE(44n, 4);
      rec.writeUInt16LE(45, 12);
      rec.writeUInt16LE(45, 14);
      rec.writeBigUInt64LE(BigInt(this.#count), 24);
      rec.writeBigUInt64LE(BigInt(this.#count), 32);
      rec.writeBigUInt64LE(BigInt(cdSize), 40);
      rec.writeBigUInt64LE(BigInt(cdStart), 48);
      const recPos = this.#pos;
      this.#write(rec);
      const loc = Buffer.alloc(20);
      loc.writeUInt32LE(SIG_LOCATOR64, 0);
      loc.writeBigUInt64LE(BigInt(recPos), 8);
      loc.writeUInt32LE(1, 16);
      this.#write(loc);
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(SIG_EOCD, 0);
    end.writeUInt16LE(zip64 ? 0xffff : this.#count, 8);
    end.writeUInt16LE(zip64 ? 0xffff : this.#count, 10);
    end.writeUInt32LE(zip64 ? 0xffffffff : cdSize, 12);
    end.writeUInt32LE(zip64 ? 0xffffffff : cdStart, 16);
    this.#write(end);
    closeSync(this.#fd);
  }

  /** Closes the file without finishing it (the caller removes it). */
  abort(): void {
    try {
      closeSync(this.#fd);
    } catch {
      /* already closed */
    }
  }
}
