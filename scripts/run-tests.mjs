#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node:test; extra arguments filter by path.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);
const files = [];
const walk = (d) => {
  for (const e of readdirSync(d)) {
    const p = join(d, e);
    if (statSync(p).isDirectory()) walk(p);
    else if (e.endsWith('.test.js')) files.push(p);
  }
};
walk(join(root, 'dist', 'test'));
const chosen = files.sort().filter((f) => !filters.length || filters.some((x) => relative(root, f).includes(x)));
if (!chosen.length) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...chosen], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
