// The dashboard's server without a browser: the metrics stream (complete lines only, a restarted file reset),
// traversal requests sent raw (no client normalizing them) all 404, a port in use named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { listen } from '../../src/serve/server.js';
import { JsonlTail } from '../../src/serve/tail.js';

const dir = mkdtempSync(join(tmpdir(), 'swav-serve-routes-'));
const run = join(dir, 'a');
mkdirSync(run);
writeFileSync(join(run, 'metrics.jsonl'), '{"type":"train","iteration":1,"loss":2}\n');
writeFileSync(join(dir, 'secret.txt'), 'not for the browser');

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => done({ status: res.statusCode!, body }));
    })
      .on('error', fail)
      .end();
  });
}

test('the tail hands out complete lines once, waits for a line in progress, and resets on a shorter file', () => {
  const file = join(dir, 'tail.jsonl');
  writeFileSync(file, '{"a":1}\n{"a":');
  const tail = new JsonlTail(file);
  assert.deepEqual(tail.read(), { records: [{ a: 1 }], reset: false });
  assert.deepEqual(tail.read(), { records: [], reset: false });
  appendFileSync(file, '2, "é": "ü"}\nnot json\n');
  assert.deepEqual(tail.read(), { records: [{ a: 2, é: 'ü' }], reset: false }, 'the line completed; one that is no JSON skipped');
  writeFileSync(file, '{"b":1}\n');
  assert.deepEqual(tail.read(), { records: [{ b: 1 }], reset: true });
});

test('pages and assets are served; every other path, however encoded, is a 404', async () => {
  const { server } = await listen(dir, 0, '127.0.0.1');
  try {
    const { port } = server.address() as AddressInfo;
    assert.match((await get(port, '/')).body, /href="\/runs\/a"/);
    assert.equal((await get(port, '/runs/a')).status, 200);
    assert.equal((await get(port, '/assets/uPlot.iife.min.js')).status, 200);
    for (const path of [
      '/../secret.txt',
      '/runs/..%2fsecret.txt',
      '/runs/%2e%2e%2fsecret.txt',
      '/runs/%252e%252e%252fsecret.txt',
      '/assets/..%2f..%2f..%2fpackage.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      `/runs/${encodeURIComponent(run)}`,
      '//etc/passwd',
      '/runs/a/metrics.jsonl',
      '/runs/a/../../secret.txt',
      '/runs/a/gallery',
      '/runs/a/gallery/0.png',
      '/runs/a/map',
      '/runs/b',
    ]) {
      const r = await get(port, path);
      assert.equal(r.status, 404, path);
      assert.doesNotMatch(r.body, /not for the browser/);
    }
    await assert.rejects(listen(dir, port, '127.0.0.1'), {
      message: `serve: port ${port} on 127.0.0.1 is in use: choose another with --port`,
    });
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
