// Runs our command and the PyTorch peer's in alternation, round after round, and reports medians and ratios.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The machine, as `swav bench info` describes it (CPU, the flags that pick kernels, libtorch, oneDNN's kernels). */
function machine() {
  const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'bench', 'info', '--json'], { encoding: 'utf8' });
  const m = JSON.parse(r.stdout);
  return { line: `${m.cores} x ${m.cpu} (family ${m.family} model ${m.model}; ${m.flags.join(' ')}), libtorch ${m.libtorch}, oneDNN ${m.onednn}`, ...m };
}

export function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Runs argv under GNU time, so that both sides' peak RSS is measured the same way (maxrss_mib). */
function runJson(argv) {
  const timed = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-f', 'MAXRSS_KB=%M', ...argv] : argv;
  const r = spawnSync(timed[0], timed.slice(1), { encoding: 'utf8', env: { ...process.env } });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed:\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  const kb = Number(/MAXRSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { ...JSON.parse(line), maxrss_mib: Math.round(kb / 1024) };
}

/** {title, metric, lowerIsBetter?, ours(config) -> argv, peer(config) -> argv, configs: [{name, args}], out}; the ratio
 * is always "how many times better ours is" (peer / ours for times). */
export function compare(spec) {
  const rounds = Number(option('rounds', '3'));
  const results = spec.configs.map((c) => ({ config: c.name, ours: [], peer: [], oursRaw: [], peerRaw: [] }));
  for (let r = 0; r < rounds; r++) {
    spec.configs.forEach((c, i) => {
      // alternate which side goes first, so that neither always runs on a warmer machine
      const order = r % 2 ? ['peer', 'ours'] : ['ours', 'peer'];
      for (const side of order) {
        const res = runJson(spec[side](c));
        results[i][side].push(res[spec.metric]);
        results[i][`${side}Raw`].push(res);
        console.error(`round ${r + 1} ${c.name} ${side}: ${res[spec.metric]}`);
      }
    });
  }
  const rows = results.map((x) => ({
    config: x.config, ours: median(x.ours), peer: median(x.peer),
    ratio: spec.lowerIsBetter ? median(x.peer) / median(x.ours) : median(x.ours) / median(x.peer),
    oursAll: x.ours, peerAll: x.peer,
    oursPeakRssMiB: median(x.oursRaw.map((o) => o.maxrss_mib)),
    peerPeakRssMiB: median(x.peerRaw.map((o) => o.maxrss_mib)),
  }));
  const info = machine();
  const report = { title: spec.title, metric: spec.metric, rounds, machine: info.line, machineInfo: info, date: new Date().toISOString(), rows };
  mkdirSync(dirname(spec.out), { recursive: true });
  writeFileSync(spec.out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\n${spec.title} (${spec.metric}, median of ${rounds}, ${report.machine})\n`);
  console.log('| config | swav | PyTorch | ratio | peak RSS swav / PyTorch (MiB) |\n|---|---|---|---|---|');
  for (const row of rows) {
    console.log(`| ${row.config} | ${row.ours.toFixed(3)} | ${row.peer.toFixed(3)} | ${row.ratio.toFixed(2)}x | ${row.oursPeakRssMiB} / ${row.peerPeakRssMiB} |`);
  }
}
