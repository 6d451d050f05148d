// The command line's contract: --version, --help on every command, and usage errors as one line with exit status 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from '../helpers.js';

const swav = (...args: string[]) => spawnSync(process.execPath, [join(root, 'dist/src/cli/main.js'), ...args], { encoding: 'utf8' });

const LEAVES: [string[], string[]][] = [
  [['train'], ['--config <file>', '--out <dir>', 'optim.base_lr']],
  [
    ['eval', 'knn'],
    ['--weights', '--k <list>', '(default: [200])', '--temperature'],
  ],
  [
    ['eval', 'linear'],
    ['--cached-features', '--epochs <n>', '(default: 100)', '--lr <lr>', '(default: 0.3)', '--final-lr', '--nesterov', '--size', '--seed'],
  ],
  [
    ['eval', 'semisup'],
    ['--fraction <f>', '--subset <file>', '--lr-last-layer', '--decay-epochs'],
  ],
  [['extract'], ['--weights', '--input', '--out']],
  [['convert'], ['<in>', '<out>']],
  [['hub', 'list'], []],
  [
    ['hub', 'download'],
    ['<name>', '--force'],
  ],
  [['launch'], ['--nproc-per-node <n>', '--nnodes <m>', '--node-rank', '--master-addr', '--master-port']],
  ...['step', 'extract', 'data', 'load', 'cluster', 'probe'].map((b): [string[], string[]] => [['bench', b], ['--json']]),
];

test('swav --version prints the package version', () => {
  const r = swav('--version');
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
});

test('every command has its --help: usage, options with their defaults, examples where there are options', () => {
  for (const [path, expected] of LEAVES) {
    const r = swav(...path, '--help');
    assert.equal(r.status, 0, `${path.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: swav ${path.join(' ')} `), path.join(' '));
    for (const e of expected) assert.ok(r.stdout.includes(e), `swav ${path.join(' ')} --help lists ${e}`);
    if (path[1] !== 'list') assert.match(r.stdout, /\nExamples:\n {2}\$ swav /, `swav ${path.join(' ')} --help has an example`);
  }
  for (const group of ['eval', 'hub', 'bench']) {
    const r = swav(group, '--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /Commands:/);
  }
});

test('usage errors: one line naming the command, exit status 2', () => {
  const cases: [string[], RegExp][] = [
    [[], /^Usage: swav /],
    [['trian'], /^swav: unknown command 'trian' \(Did you mean train\?\)/],
    [['eval'], /^Usage: swav eval /],
    [
      ['eval', 'knn', '--weights', 'w', '--temprature', '5'],
      /^swav eval knn: unknown option '--temprature' \(Did you mean --temperature\?\)/,
    ],
    [['eval', 'linear', '--weights', 'w', '--epochs'], /^swav eval linear: option '--epochs <n>' argument missing/],
    [
      ['eval', 'linear', '--weights', 'w', '--epochs', 'ten'],
      /^swav eval linear: option '--epochs <n>' argument 'ten' is invalid\. expected an integer/,
    ],
    [['eval', 'semisup', '--weights', 'w', '--decay-epochs', '12,-1'], /argument '12,-1' is invalid\. expected positive numbers/],
    [['bench', 'step', '--crops', '2x'], /^swav bench step: .*'2x' is not NxSIZE/],
    [['bench', 'step', '--channels-last', 'maybe'], /expected 0 or 1/],
    [['hub', 'download'], /^swav hub download: missing required argument 'name'/],
    [['convert', 'a.pth'], /^swav convert: missing required argument 'out'/],
    [['train'], /^swav train: required option '--config <file>' not specified/],
    [
      ['eval', 'knn', '--weights', '/nonexistent/w.pth', '--data', '.'],
      /^swav: eval knn: --weights \/nonexistent\/w\.pth is neither a run directory, a file nor a zoo name/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = swav(...args);
    assert.equal(r.status, 2, `swav ${args.join(' ')}: status ${r.status}, ${r.stderr}`);
    assert.match(r.stderr, message, `swav ${args.join(' ')}`);
    if (!message.source.startsWith('^Usage'))
      assert.equal(r.stderr.trim().split('\n').length, 1, `swav ${args.join(' ')}: one line, got ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});
