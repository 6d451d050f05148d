// Lint and format: Biome (biome.json) over the whole tree, as `npm test` runs it; `npx biome check --write` fixes
// what it can.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './helpers.js';

test('biome ci: no lint finding and every file formatted', () => {
  const r = spawnSync(join(root, 'node_modules', '.bin', 'biome'), ['ci', '--colors=off', '--max-diagnostics=50'], {
    cwd: root,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`.slice(-8000));
});
