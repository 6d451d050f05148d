// The runs a dashboard shows: RUN_DIR itself when it holds metrics.jsonl, else each of its subdirectories that does.
// The browser names a run only by one of these names: no path from a request ever reaches the filesystem.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export const METRICS = 'metrics.jsonl';

export interface Run {
  name: string;
  dir: string;
}

const isRun = (dir: string) => existsSync(join(dir, METRICS)) || existsSync(join(dir, 'config.yaml'));

/** The runs under `root`, looked for anew on each call (a folder of runs gains runs as they start). */
export function listRuns(root: string): Run[] {
  const dir = resolve(root);
  if (isRun(dir)) return [{ name: basename(dir), dir }];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && isRun(join(dir, e.name)))
    .map((e) => ({ name: e.name, dir: join(dir, e.name) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The run named exactly `name`, or undefined: a lookup in the list, never a path join. */
export const findRun = (root: string, name: string): Run | undefined => listRuns(root).find((r) => r.name === name);

/** RUN_DIR must be a directory: checked once at startup, so a typo is one line of error. */
export function checkRoot(root: string): void {
  if (!existsSync(root)) throw new Error(`serve: ${root} does not exist: give a run directory or a folder of them`);
  if (!statSync(root).isDirectory()) throw new Error(`serve: ${root} is a file, not a run directory`);
}
