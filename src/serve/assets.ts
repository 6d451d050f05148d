// The pages' static files: uPlot's script and stylesheet from node_modules (nothing from a CDN, so the dashboard
// works offline). A fixed table of names: a request can only pick one of these, never name a file.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const uplotDist = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');

const ASSETS: Record<string, { file: string; type: string }> = {
  'uPlot.iife.min.js': { file: join(uplotDist, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { file: join(uplotDist, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

const cache = new Map<string, Buffer>();

/** The asset named exactly `name` with its content type, or undefined. */
export function asset(name: string): { body: Buffer; type: string } | undefined {
  const a = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
  if (!a) return undefined;
  if (!cache.has(name)) cache.set(name, readFileSync(a.file));
  return { body: cache.get(name)!, type: a.type };
}
