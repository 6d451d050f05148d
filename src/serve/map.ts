// The 2-D map of the gallery's sampled images: UMAP (umap-js) of their trunk features, seeded so that a reload
// draws the same map; each point with its image's prototype.
import { UMAP } from 'umap-js';
import type { GalleryEntry } from './gallery.js';

export interface MapPoint {
  image: number;
  x: number;
  y: number;
  prototype: number;
}

const maps = new WeakMap<GalleryEntry, MapPoint[]>();

/** A small deterministic generator (mulberry32): UMAP's randomness, the same on every call. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function mapOf(entry: GalleryEntry): MapPoint[] {
  const hit = maps.get(entry);
  if (hit) return hit;
  const rows = entry.features.tolist() as number[][];
  if (rows.length < 3) throw new Error(`serve: ${rows.length} sampled images are too few for a map`);
  const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(15, rows.length - 1), random: seeded(0) });
  const points = umap.fit(rows).map(([x, y], image) => ({ image, x, y, prototype: entry.picks[image] }));
  maps.set(entry, points);
  return points;
}
