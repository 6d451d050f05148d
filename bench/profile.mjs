#!/usr/bin/env node
// The SwAV step, operator by operator, beside PyTorch's: `swav bench step --profile N --profile-detail` and
// bench/torch_step_profile.py (the peer's step under torch.profiler with record_shapes), matched by operator and
// input shapes. Prints, per config: the operators by self time per step on both sides; the (operator, shapes) rows
// where the two differ most; the calls one side makes and the other does not; and our calls whose tensor inputs are
// strided or mix contiguous and channels_last (the layout round trips). Raw profiles go to
// bench/results/profile-<amp>-<layout>.json.
// usage: node bench/profile.mjs [--configs bf16:1,fp32:1] [--batch 8] [--crops 2x224,6x96] [--arch resnet50]
//        [--steps 2] [--warmup 2] [--profile 2] [--top 25] [--peer-glibc-tuned] [--peer-env NAME=VALUE]
//        [--ours-env NAME=VALUE] [--tag before]
// Profiled steps are slower than unprofiled ones (the observers' own cost lands on the many small operators):
// read the figures for proportions and for calls, and compare ratios from one run only.
import { mkdirSync, writeFileSync } from 'node:fs';
import { option, runJson, sideEnv } from './compare.mjs';

const arch = option('arch', 'resnet50');
const batch = option('batch', '8');
const crops = option('crops', '2x224,6x96');
const steps = option('steps', '2');
const warmup = option('warmup', '2');
const profileSteps = option('profile', '2');
const top = Number(option('top', '25'));
const tag = option('tag', '');
const env = sideEnv();
const common = ['--arch', arch, '--batch', batch, '--crops', crops, '--steps', steps, '--warmup', warmup];

const fmt = (x, d = 1) => (x === undefined ? '-' : x.toFixed(d));
const shapeText = (s) => JSON.stringify(s).replace(/,/g, ', ');

/** Rows of one side merged by key: calls and ms summed, the dtype / layout variants listed. */
function byKey(rows, keyOf) {
  const m = new Map();
  for (const r of rows) {
    const k = keyOf(r);
    const e = m.get(k) ?? { op: r.op, shapes: r.shapes, calls: 0, ms: 0, variants: new Map() };
    e.calls += r.calls;
    e.ms += r.ms;
    const v = [r.dtypes?.join(' ') ?? '', r.layouts?.filter((l) => l).join(' ') ?? ''].filter((x) => x).join(' / ');
    e.variants.set(v, (e.variants.get(v) ?? 0) + r.calls);
    m.set(k, e);
  }
  return m;
}

function report(name, ours, peer) {
  const out = [];
  const sum = (rows) => rows.reduce((a, r) => a + r.ms, 0);
  out.push(`\n### ${name}\n`);
  out.push(
    `Unprofiled step: swav ${ours.step_s} s (${ours.samples_per_s} samples/s), PyTorch ${peer.step_s} s (${peer.samples_per_s} samples/s). ` +
      `Operator self time per profiled step: swav ${fmt(sum(ours.profile), 0)} ms, PyTorch ${fmt(sum(peer.profile), 0)} ms.\n`,
  );

  // 1. by operator name
  const o1 = byKey(ours.profile, (r) => r.op);
  const p1 = byKey(peer.profile, (r) => r.op);
  const names = [...new Set([...o1.keys(), ...p1.keys()])].sort(
    (a, b) => Math.max(o1.get(b)?.ms ?? 0, p1.get(b)?.ms ?? 0) - Math.max(o1.get(a)?.ms ?? 0, p1.get(a)?.ms ?? 0),
  );
  out.push('| operator | calls swav | calls PyTorch | ms swav | ms PyTorch | swav - PyTorch (ms) |\n|---|---|---|---|---|---|');
  for (const n of names.slice(0, top)) {
    const a = o1.get(n);
    const b = p1.get(n);
    out.push(`| ${n} | ${fmt(a?.calls, 0)} | ${fmt(b?.calls, 0)} | ${fmt(a?.ms)} | ${fmt(b?.ms)} | ${fmt((a?.ms ?? 0) - (b?.ms ?? 0))} |`);
  }

  // 2. by operator and input shapes: the largest differences
  const key = (r) => `${r.op} ${JSON.stringify(r.shapes)}`;
  const o2 = byKey(ours.profile, key);
  const p2 = byKey(peer.profile, key);
  const keys = [...new Set([...o2.keys(), ...p2.keys()])];
  const diff = (k) => (o2.get(k)?.ms ?? 0) - (p2.get(k)?.ms ?? 0);
  const variants = (e) => (e ? [...e.variants].map(([v, c]) => (e.variants.size > 1 ? `${v} (${fmt(c, 0)})` : v)).join('; ') : '-');
  const row = (k) => {
    const a = o2.get(k);
    const b = p2.get(k);
    const e = a ?? b;
    return `| ${e.op} | ${shapeText(e.shapes)} | ${fmt(a?.calls, 0)} | ${fmt(b?.calls, 0)} | ${fmt(a?.ms)} | ${fmt(b?.ms)} | ${fmt(diff(k))} | ${variants(a)} | ${variants(b)} |`;
  };
  const head =
    '| operator | input shapes | calls swav | calls PyTorch | ms swav | ms PyTorch | swav - PyTorch (ms) | swav dtypes / layouts | PyTorch dtypes |\n|---|---|---|---|---|---|---|---|---|';
  out.push(`\nOperator and input shapes, the ${top} largest differences in self time per step:\n`);
  out.push(head);
  for (const k of [...keys].sort((x, y) => Math.abs(diff(y)) - Math.abs(diff(x))).slice(0, top)) out.push(row(k));

  // 3. calls one side makes and the other does not (or not as often)
  const extra = keys
    .filter((k) => Math.abs((o2.get(k)?.calls ?? 0) - (p2.get(k)?.calls ?? 0)) >= 0.5)
    .sort((x, y) => Math.max(o2.get(y)?.ms ?? 0, p2.get(y)?.ms ?? 0) - Math.max(o2.get(x)?.ms ?? 0, p2.get(x)?.ms ?? 0));
  out.push(`\nCalls made a different number of times on the two sides (${extra.length} rows; the ${top} costliest):\n`);
  out.push(head);
  for (const k of extra.slice(0, top)) out.push(row(k));

  // 4. our calls on strided inputs or on inputs of mixed layouts
  const mixed = byKey(
    ours.profile.filter((r) => {
      const ls = (r.layouts ?? []).filter((l) => l);
      return ls.includes('s') || (ls.includes('c') && ls.includes('cl'));
    }),
    (r) => r.op,
  );
  out.push('\nOur calls with a strided tensor input, or contiguous and channels_last inputs together (by operator):\n');
  out.push('| operator | calls | ms | layouts (calls) |\n|---|---|---|---|');
  for (const e of [...mixed.values()].sort((a, b) => b.ms - a.ms).slice(0, top)) {
    out.push(`| ${e.op} | ${fmt(e.calls, 0)} | ${fmt(e.ms)} | ${variants(e).slice(0, 300)} |`);
  }
  return out.join('\n');
}

const configs = option('configs', 'bf16:1,fp32:1').split(',');
const results = [];
for (const c of configs) {
  const [amp, cl] = c.split(':');
  const args = [...common, '--amp', amp, '--channels-last', cl];
  const name = `${amp} ${cl === '1' ? 'channels_last' : 'NCHW'}`;
  console.error(`${name}: swav`);
  const ours = runJson(
    ['node', 'dist/src/cli/main.js', 'bench', 'step', ...args, '--profile', profileSteps, '--profile-detail', '--json'],
    env.ours,
  );
  console.error(`${name}: PyTorch`);
  const peer = runJson(['/usr/bin/python3', 'bench/torch_step_profile.py', ...args, '--profile', profileSteps], env.peer);
  const text = report(name, ours, peer);
  console.log(text);
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/profile-${amp}-${cl === '1' ? 'cl' : 'nchw'}${tag ? `-${tag}` : ''}.json`;
  writeFileSync(
    file,
    `${JSON.stringify({ date: new Date().toISOString(), config: name, args, oursEnv: env.ours, peerEnv: env.peer, ours, peer }, null, 1)}\n`,
  );
  results.push({ name, file });
}
console.error(`raw profiles: ${results.map((r) => r.file).join(', ')}`);
