// The model zoo: the registry, loading a local file, downloads from a local server (progress, atomic rename,
// interrupted transfers), offline errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { torch, hub } from '../../src/index.js';
import { assertClose, largeGoldens } from '../helpers.js';

const dir = largeGoldens('--checkpoints', 'checkpoints');

function run(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/src/cli/main.js', ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

test('the registry has the 15 published checkpoints, and `swav hub list` shows them', async () => {
  assert.equal(hub.MODELS.length, 15);
  assert.equal(new Set(hub.MODELS.map((m) => m.name)).size, 15);
  const { code, stdout } = await run(['hub', 'list'], {});
  assert.equal(code, 0);
  for (const m of hub.MODELS) assert.ok(stdout.includes(m.name) && stdout.includes(m.url), m.name);
  assert.match(stdout, /swav_RN50w5_400ep_pretrain\s+SwAV\s+resnet50w5\s+400\s+4096\s+2x224 \+ 6x96\s+78\.5/);
});

test('hub.load with a local file gives the trunk with its weights (the features PyTorch gives)', async () => {
  const model = await hub.load('resnet50', { weights: join(dir, 'resnet50_zip.pth') });
  torch.tidy(() => {
    model.eval();
    const x = torch.load(join(dir, 'images.npy'));
    const f = torch.noGrad(() => model.forward(x));
    assertClose(f, torch.load(join(dir, 'resnet50_features.npy')), 'features');
    assert.equal(model.fc, null);
    assert.equal(model.prototypes, null);
  });
  model.dispose();
  const withHead = await hub.load('swav_800ep_pretrain', { weights: join(dir, 'resnet50_legacy.pth.tar'), head: true });
  assert.deepEqual(withHead.prototypes && (withHead.prototypes as any).weight.shape, [3000, 128]);
  withHead.dispose();
  await assert.rejects(hub.load('resnet50w2', { weights: join(dir, 'resnet50_zip.pth') }), /holds a resnet50, not a resnet50w2/);
  await assert.rejects(hub.load('nope'), /unknown model 'nope'/);
});

test('a download from a server shows progress and lands atomically under the cache', async () => {
  const body = readFileSync(join(dir, 'resnet18_zip.pth'));
  const { server, url } = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': body.length });
    let i = 0;
    const pump = () => {
      // in pieces, so that progress is reported on the way
      if (i >= body.length) return res.end();
      res.write(body.subarray(i, i + (1 << 20)));
      i += 1 << 20;
      setTimeout(pump, 5);
    };
    pump();
  });
  const home = mkdtempSync(join(tmpdir(), 'swav-home-'));
  try {
    const { code, stdout, stderr } = await run(['hub', 'download', 'swav_400ep_pretrain'], { SWAV_HOME: home, SWAV_HUB_URL: url });
    assert.equal(code, 0, stderr);
    const dest = join(home, 'checkpoints', 'swav_400ep_pretrain.pth.tar');
    assert.equal(stdout.trim(), dest);
    assert.match(stderr, /downloading http:\/\/127\.0\.0\.1:\d+\/swav_400ep_pretrain\.pth\.tar/);
    assert.match(stderr, /\[#{10,}\.*\]\s+\d+% /, 'a progress bar');
    assert.match(stderr, /100%/);
    assert.ok(readFileSync(dest).equals(body));
    assert.deepEqual(
      readdirSync(join(home, 'checkpoints')).sort(),
      ['swav_400ep_pretrain.pth.tar', 'swav_400ep_pretrain.pth.tar.sha256'],
      'the file and its recorded SHA-256; no temporary file left',
    );
    assert.equal(readFileSync(`${dest}.sha256`, 'utf8').trim(), createHash('sha256').update(body).digest('hex'));
  } finally {
    server.close();
  }
});

test('SHA-256: a download matching --sha256 is kept, one byte off is refused and deleted; a cached file altered later is refused on load', async () => {
  const body = readFileSync(join(dir, 'resnet18_zip.pth'));
  const good = createHash('sha256').update(body).digest('hex');
  let serveBad = false;
  const { server, url } = await serve((_req, res) => {
    const b = Buffer.from(body);
    if (serveBad) b[1000] ^= 1;
    res.writeHead(200, { 'content-length': b.length });
    res.end(b);
  });
  const xdg = mkdtempSync(join(tmpdir(), 'swav-xdg-'));
  const env = { SWAV_HOME: '', XDG_CACHE_HOME: xdg, SWAV_HUB_URL: url };
  const folder = join(xdg, 'swav', 'checkpoints');
  try {
    const ok = await run(['hub', 'download', 'swav_200ep_pretrain', '--sha256', good.toUpperCase()], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), join(folder, 'swav_200ep_pretrain.pth.tar'), '$XDG_CACHE_HOME/swav without $SWAV_HOME');
    serveBad = true;
    const bad = await run(['hub', 'download', 'swav_100ep_pretrain', '--sha256', good], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, new RegExp(`swav: error: .*its SHA-256 is [0-9a-f]{64}, not the expected ${good}; the download was deleted`));
    assert.deepEqual(
      readdirSync(folder).filter((f) => f.includes('100ep')),
      [],
      'nothing left of the refused download',
    );
    const cached = join(folder, 'swav_200ep_pretrain.pth.tar');
    const altered = Buffer.from(body);
    altered[5000] ^= 1;
    writeFileSync(cached, altered);
    const again = await run(['hub', 'download', 'swav_200ep_pretrain'], env);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /swav_200ep_pretrain\.pth\.tar: its SHA-256 is [0-9a-f]{64}, not the one recorded at its download .*swav hub download swav_200ep_pretrain --force/,
    );
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      await assert.rejects(hub.load('swav_200ep_pretrain'), /not the one recorded at its download/, 'the library refuses it too');
    } finally {
      for (const k of Object.keys(env))
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
    }
  } finally {
    server.close();
  }
  const wrong = await run(['hub', 'download', 'swav_200ep_pretrain', '--sha256', 'abc'], env);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /--sha256 takes 64 hex digits/);
});

test('an interrupted download leaves no file under the final name; an unreachable host says how to pass a local file', async () => {
  const { server, url } = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': 1_000_000 });
    res.write(Buffer.alloc(300_000));
    setTimeout(() => res.destroy(), 20);
  });
  const home = mkdtempSync(join(tmpdir(), 'swav-home-'));
  try {
    const r = await run(['hub', 'download', 'swav_100ep_pretrain'], { SWAV_HOME: home, SWAV_HUB_URL: url });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /swav: error: .*(closed|incomplete|aborted|socket hang up)/i);
    assert.ok(!existsSync(join(home, 'checkpoints', 'swav_100ep_pretrain.pth.tar')));
    assert.deepEqual(readdirSync(join(home, 'checkpoints')), [], 'no temporary file left');
  } finally {
    server.close();
  }
  const off = await run(
    ['extract', '--arch', 'resnet50', '--weights', 'resnet50', '--input', join(dir, 'images.npy'), '--out', join(home, 'f.npy')],
    { SWAV_HOME: home, SWAV_HUB_URL: 'http://127.0.0.1:9/' },
  );
  assert.equal(off.code, 1);
  assert.match(off.stderr, /cannot download .* pass the file with --weights FILE/s);
});
