// Runs our command and the PyTorch peer's in alternation, round after round, and reports medians and ratios.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The machine, as `swav bench info` describes it (CPU, the flags that pick kernels, libtorch, oneDNN's kernels). */
function machine() {
  const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'bench', 'info', '--json'], { encoding: 'utf8' });
  const m = JSON.parse(r.stdout);
  return {
    line: `${m.cores} x ${m.cpu} (family ${m.family} model ${m.model}; ${m.flags.join(' ')}), libtorch ${m.libtorch}, oneDNN ${m.onednn}`,
    ...m,
  };
}

export function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** Every value of a repeatable option (`--name A --name B`). */
export function options(name) {
  return process.argv.flatMap((a, i) => (a === `--${name}` && i + 1 < process.argv.length ? [process.argv[i + 1]] : []));
}

/** glibc told to keep its heap (bench/README): the peer given the advantage our caching allocator gives us. */
export const GLIBC_TUNED = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=268435456';

/** The environment each side runs with beyond this one's: `--peer-env NAME=VALUE` and `--ours-env NAME=VALUE`
 * (repeatable), `--peer-glibc-tuned` for GLIBC_TUNABLES=GLIBC_TUNED. */
export function sideEnv() {
  const parse = (list) =>
    Object.fromEntries(
      list.map((kv) => {
        const i = kv.indexOf('=');
        if (i <= 0) throw new Error(`expected NAME=VALUE, got ${kv}`);
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
    );
  const peer = parse(options('peer-env'));
  if (process.argv.includes('--peer-glibc-tuned')) peer.GLIBC_TUNABLES = GLIBC_TUNED;
  const base = options('base-env');
  return { ours: parse(options('ours-env')), peer, base: base.length ? parse(base) : null };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Runs argv under GNU time, so that both sides' peak RSS is measured the same way (maxrss_mib); `env` adds to ours. */
export function runJson(argv, env = {}) {
  const timed = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-f', 'MAXRSS_KB=%M', ...argv] : argv;
  const r = spawnSync(timed[0], timed.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed:\n${r.stderr}`);
  const line = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  const kb = Number(/MAXRSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { ...JSON.parse(line), maxrss_mib: Math.round(kb / 1024) };
}

/** {title, metric, lowerIsBetter?, ours(config) -> argv, peer(config) -> argv, configs: [{name, args}], out}; the ratio
 * is always "how many times better ours is" (peer / ours for times). */
export function compare(spec) {
  const rounds = Number(option('rounds', '3'));
  const env = sideEnv();
  // --base-env NAME=VALUE (repeatable): ours a second time with these variables (e.g. an optimization turned off),
  // in the same alternation: before and after against the peer in one run
  const sides = env.base ? ['ours', 'peer', 'base'] : ['ours', 'peer'];
  const argvOf = { ours: spec.ours, peer: spec.peer, base: spec.ours };
  const envOf = { ours: env.ours, peer: env.peer, base: { ...env.ours, ...env.base } };
  const results = spec.configs.map((c) => ({ config: c.name, ours: [], peer: [], base: [], oursRaw: [], peerRaw: [], baseRaw: [] }));
  for (let r = 0; r < rounds; r++) {
    spec.configs.forEach((c, i) => {
      // rotate which side goes first, so that none always runs on a warmer machine
      const order = sides.length === 2 ? (r % 2 ? ['peer', 'ours'] : ['ours', 'peer']) : [...sides.slice(r % 3), ...sides.slice(0, r % 3)];
      for (const side of order) {
        const res = runJson(argvOf[side](c), envOf[side]);
        results[i][side].push(res[spec.metric]);
        results[i][`${side}Raw`].push(res);
        console.error(`round ${r + 1} ${c.name} ${side}: ${res[spec.metric]}`);
      }
    });
  }
  const rows = results.map((x) => ({
    config: x.config,
    ours: median(x.ours),
    peer: median(x.peer),
    ratio: spec.lowerIsBetter ? median(x.peer) / median(x.ours) : median(x.ours) / median(x.peer),
    oursAll: x.ours,
    peerAll: x.peer,
    oursPeakRssMiB: median(x.oursRaw.map((o) => o.maxrss_mib)),
    peerPeakRssMiB: median(x.peerRaw.map((o) => o.maxrss_mib)),
    ...(env.base
      ? {
          base: median(x.base),
          baseAll: x.base,
          baseRatio: spec.lowerIsBetter ? median(x.peer) / median(x.base) : median(x.base) / median(x.peer),
        }
      : {}),
  }));
  const info = machine();
  const report = {
    title: spec.title,
    metric: spec.metric,
    rounds,
    machine: info.line,
    machineInfo: info,
    date: new Date().toISOString(),
    oursEnv: env.ours,
    peerEnv: env.peer,
    ...(env.base ? { baseEnv: envOf.base } : {}),
    rows,
  };
  mkdirSync(dirname(spec.out), { recursive: true });
  writeFileSync(spec.out, `${JSON.stringify(report, null, 2)}\n`);
  const envLine = (e) =>
    Object.entries(e)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
  console.log(`\n${spec.title} (${spec.metric}, median of ${rounds}, ${report.machine})`);
  if (Object.keys(env.ours).length) console.log(`swav run with ${envLine(env.ours)}`);
  if (Object.keys(env.peer).length) console.log(`PyTorch run with ${envLine(env.peer)}`);
  if (env.base) console.log(`swav (base) run with ${envLine(envOf.base)}`);
  console.log('');
  if (env.base) {
    console.log(
      '| config | swav | swav (base) | PyTorch | ratio | ratio (base) | peak RSS swav / PyTorch (MiB) |\n|---|---|---|---|---|---|---|',
    );
    for (const row of rows) {
      console.log(
        `| ${row.config} | ${row.ours.toFixed(3)} | ${row.base.toFixed(3)} | ${row.peer.toFixed(3)} | ${row.ratio.toFixed(2)}x | ${row.baseRatio.toFixed(2)}x | ${row.oursPeakRssMiB} / ${row.peerPeakRssMiB} |`,
      );
    }
    return;
  }
  console.log('| config | swav | PyTorch | ratio | peak RSS swav / PyTorch (MiB) |\n|---|---|---|---|---|');
  for (const row of rows) {
    console.log(
      `| ${row.config} | ${row.ours.toFixed(3)} | ${row.peer.toFixed(3)} | ${row.ratio.toFixed(2)}x | ${row.oursPeakRssMiB} / ${row.peerPeakRssMiB} |`,
    );
  }
}
