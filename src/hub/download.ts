// Downloads into the cache: to a temporary file in the same folder, renamed once complete and of the announced
// size, so that an interrupted download never leaves a file under the final name. The file's SHA-256, computed
// as it arrives, is checked against a known one and recorded beside it (FILE.sha256) for later loads to verify.
// Progress comes as events.
import { createHash } from 'node:crypto';
import {
  closeSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as http from 'node:http';
import * as https from 'node:https';

export type DownloadEvent =
  | { status: 'initiate'; name: string; url: string }
  | { status: 'progress'; name: string; loaded: number; total: number | null; progress: number | null }
  | { status: 'done'; name: string; path: string; bytes: number; sha256: string };

export class DownloadError extends Error {}

export interface DownloadOptions {
  onProgress?: (e: DownloadEvent) => void;
  /** Gives up after this long without data (ms). */
  timeoutMs?: number;
  /** The file's known SHA-256 (hex): another one deletes the download, an error. */
  sha256?: string;
}

/** The file recording a cached file's SHA-256. */
export const hashFile = (path: string) => `${path}.sha256`;

/** SHA-256 (hex) of a file, read in 4 MiB blocks. */
export function sha256Of(path: string): string {
  const hash = createHash('sha256');
  const buf = Buffer.alloc(4 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let n: number; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** The SHA-256 recorded for a cached file when it was downloaded, or null. */
export function recordedSha256(path: string): string | null {
  return existsSync(hashFile(path)) ? readFileSync(hashFile(path), 'utf8').trim() : null;
}

/** Downloads `url` to `dest`; resolves with dest. */
export function download(url: string, dest: string, o: DownloadOptions = {}): Promise<string> {
  const name = basename(dest);
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = join(dirname(dest), `.${name}.part-${process.pid}-${Date.now()}`);
  o.onProgress?.({ status: 'initiate', name, url });
  const fetchOnce = (u: string, redirects: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const lib = u.startsWith('https:') ? https : u.startsWith('http:') ? http : null;
      if (!lib) return reject(new DownloadError(`unsupported URL ${u}`));
      const req = lib.get(u, { timeout: o.timeoutMs ?? 30_000 }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (redirects >= 5) return reject(new DownloadError(`too many redirects from ${url}`));
          return resolve(fetchOnce(new URL(res.headers.location, u).href, redirects + 1));
        }
        if (status !== 200) {
          res.resume();
          return reject(new DownloadError(`${u} answered HTTP ${status}`));
        }
        const total = res.headers['content-length'] ? Number(res.headers['content-length']) : null;
        let loaded = 0;
        let lastReport = 0;
        const hash = createHash('sha256');
        const out = createWriteStream(tmp);
        const fail = (e: Error) => {
          out.destroy();
          rmSync(tmp, { force: true });
          reject(e instanceof DownloadError ? e : new DownloadError(`download of ${url} failed: ${e.message}`));
        };
        res.on('data', (chunk: Buffer) => {
          loaded += chunk.length;
          hash.update(chunk);
          const now = Date.now();
          if (now - lastReport > 100) {
            lastReport = now;
            o.onProgress?.({ status: 'progress', name, loaded, total, progress: total ? (100 * loaded) / total : null });
          }
        });
        res.on('aborted', () => fail(new DownloadError(`the connection closed after ${loaded} bytes`)));
        res.on('error', fail);
        out.on('error', fail);
        res.pipe(out);
        out.on('finish', () => {
          if (!res.complete || (total !== null && loaded !== total)) {
            return fail(new DownloadError(`incomplete download of ${url}: ${loaded} of ${total ?? 'unknown'} bytes`));
          }
          const sha256 = hash.digest('hex');
          if (o.sha256 && sha256 !== o.sha256.toLowerCase()) {
            return fail(
              new DownloadError(`${url}: its SHA-256 is ${sha256}, not the expected ${o.sha256.toLowerCase()}; the download was deleted`),
            );
          }
          try {
            writeFileSync(hashFile(dest), `${sha256}\n`);
            renameSync(tmp, dest);
          } catch (e) {
            return fail(e as Error);
          }
          o.onProgress?.({ status: 'progress', name, loaded, total, progress: 100 });
          o.onProgress?.({ status: 'done', name, path: dest, bytes: loaded, sha256 });
          resolve(dest);
        });
      });
      req.on('timeout', () => req.destroy(new Error('timed out waiting for data')));
      req.on('error', (e) => {
        rmSync(tmp, { force: true });
        reject(new DownloadError(`cannot download ${url}: ${e.message}`));
      });
    });
  return fetchOnce(url, 0);
}
