// The model zoo: a cache of the published checkpoints, downloads, and loading them into our models, as
// torch.hub.load('facebookresearch/swav', 'resnet50') does (but strict: a file that does not fit is an error).
import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { architectures, type Architecture, type ResNet } from '../models/resnet.js';
import { load as loadFile } from '../torch/io/index.js';
import type { Tensor } from '../torch/tensor.js';
import { tidy } from '../torch/scope.js';
import { ALIASES, DEFAULT_BASE_URL, MODELS, findModel, type ZooModel } from './registry.js';
import { canonicalize, findStateDict, headOptions, inferArchitecture, splitSwAV, type Named } from './adapters.js';
import { download, DownloadError, hashFile, recordedSha256, sha256Of, type DownloadEvent } from './download.js';

export { MODELS, ALIASES, findModel, type ZooModel } from './registry.js';
export * from './adapters.js';
export { download, DownloadError, sha256Of, recordedSha256, type DownloadEvent } from './download.js';

/** The cache folder, as torch.hub's: $SWAV_HOME, else $XDG_CACHE_HOME/swav, else ~/.cache/swav. */
export function cacheDir(): string {
  return process.env.SWAV_HOME || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'swav');
}

/** Where a zoo model's file lives in the cache. */
export function cachedPath(m: ZooModel): string {
  return join(cacheDir(), 'checkpoints', `${m.name}.pth.tar`);
}

function zooModel(name: string): ZooModel {
  const m = findModel(name);
  if (!m) {
    throw new Error(
      `unknown model '${name}'. The zoo has: ${MODELS.map((x) => x.name).join(', ')} ` +
        `(and the aliases ${Object.keys(ALIASES).join(', ')}); \`swav hub list\` describes them.`,
    );
  }
  return m;
}

/** The URL a model downloads from ($SWAV_HUB_URL replaces the host and folder, for mirrors). */
export function modelUrl(m: ZooModel): string {
  const base = process.env.SWAV_HUB_URL;
  return base ? `${base.replace(/\/?$/, '/')}${m.name}.pth.tar` : m.url;
}

/**
 * Downloads a zoo model into the cache unless it is there; resolves with its path. A cached file is verified
 * against the SHA-256 recorded at its download (or `sha256`, or the registry's); one without a record (copied in
 * by hand) gets one now.
 */
export async function downloadModel(
  name: string,
  o: { force?: boolean; sha256?: string; onProgress?: (e: DownloadEvent) => void } = {},
): Promise<string> {
  const m = zooModel(name);
  const dest = cachedPath(m);
  const expected = (o.sha256 ?? m.sha256)?.toLowerCase();
  if (existsSync(dest) && !o.force) {
    const got = sha256Of(dest);
    const recorded = recordedSha256(dest);
    for (const [want, what] of [
      [recorded, 'the one recorded at its download'],
      [expected, 'the expected one'],
    ] as const) {
      if (want && got !== want) {
        throw new DownloadError(
          `${dest}: its SHA-256 is ${got}, not ${what} (${want}): fetch it again with \`swav hub download ${m.name} --force\``,
        );
      }
    }
    if (!recorded) writeFileSync(hashFile(dest), `${got}\n`);
    return dest;
  }
  try {
    return await download(modelUrl(m), dest, { onProgress: o.onProgress, sha256: expected });
  } catch (e) {
    if (!(e instanceof DownloadError)) throw e;
    throw new DownloadError(
      `${e.message}\nIf this machine is offline, download ${modelUrl(m)} elsewhere and pass the file ` +
        `with --weights FILE (hub.load('${m.name}', { weights: FILE })), or copy it to ${dest}.`,
    );
  }
}

/** Reads a checkpoint file's weights under our names (everything else in the file is freed). */
export function readWeights(path: string): Named {
  return tidy(() => canonicalize(findStateDict(loadFile(path))));
}

export interface LoadOptions {
  /** A local checkpoint file instead of the cached or downloaded one. */
  weights?: string;
  /** Also build and load the projection head and prototypes found in the file. */
  head?: boolean;
  onProgress?: (e: DownloadEvent) => void;
}

/**
 * Builds `arch` and loads a checkpoint file into it: the trunk strictly (every trunk weight must be there and
 * fit), and with `head`, the projection head and prototypes the file holds.
 */
export function modelFromFile(arch: Architecture, path: string, o: { head?: boolean } = {}): ResNet {
  const sd = readWeights(path);
  try {
    const { trunk, projectionHead, prototypes } = splitSwAV(sd);
    const found = inferArchitecture(trunk);
    if (found !== arch) {
      throw new Error(
        `${path} holds ${found ? `a ${found}` : 'no ResNet trunk we know'}, not a ${arch} ` +
          `(keys such as ${[...trunk.keys()].slice(0, 3).join(', ')})`,
      );
    }
    const head = o.head ? new Map([...projectionHead, ...prototypes]) : new Map<string, Tensor>();
    const model = architectures[arch]({ numClasses: 0, ...(o.head ? headOptions(head) : {}) });
    model.loadStateDict(new Map([...trunk, ...head]));
    return model;
  } finally {
    for (const t of sd.values()) t.dispose();
  }
}

/** hub.load('swav_800ep_pretrain') (or an alias such as 'resnet50'): the trunk with the published weights. */
export async function load(name: string, o: LoadOptions = {}): Promise<ResNet> {
  const m = zooModel(name);
  const path = o.weights ?? (await downloadModel(m.name, { onProgress: o.onProgress }));
  return modelFromFile(m.arch, path, { head: o.head });
}

export { DEFAULT_BASE_URL };
