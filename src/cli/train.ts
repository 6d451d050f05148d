// `swav train --config FILE [section.key=value ...]` and `swav eval knn`.
import { appendFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { torch } from '../index.js';
import { configReference, loadConfig, validateConfig, type Config } from '../train/config.js';
import { train, buildModel, evaluateKnn, CHECKPOINT } from '../train/trainer.js';
import { modelFromFile } from '../hub/index.js';
import { architectures, type Architecture } from '../models/resnet.js';
import { DATASET_TYPES, type DatasetType } from '../data/datasets.js';
import { Flags, UsageError } from './args.js';
import { resolveWeights } from './extract.js';

function reporter() {
  const tty = process.stderr.isTTY;
  let drawn = false;
  let last = 0;
  return {
    log: (line: string) => {
      if (drawn) { process.stderr.write('\n'); drawn = false; }
      process.stderr.write(`${line}\n`);
    },
    progress: (line: string | null) => {
      if (line === null) {
        if (drawn) process.stderr.write('\n');
        drawn = false;
      } else if (tty) {
        process.stderr.write(`\r${line}\x1b[K`);
        drawn = true;
      } else if (Date.now() - last > 30_000) { // a line now and then in logs
        last = Date.now();
        process.stderr.write(`${line}\n`);
      }
    },
  };
}

export async function trainCommand(f: Flags): Promise<number> {
  if (f.bool('help')) {
    process.stdout.write('usage: swav train --config FILE [section.key=value ...] [method=NAME] [--data PATH] [--out DIR] [--device D]\n\n' +
      `${configReference()}`);
    return 0;
  }
  const file = f.string('config');
  const overrides = [...f.parsed.positionals];
  const data = f.optional('data');
  const out = f.optional('out');
  const device = f.optional('device');
  f.done();
  if (data) overrides.push(`data.path=${JSON.stringify(data)}`);
  if (out) overrides.push(`run.out=${JSON.stringify(out)}`);
  if (device) overrides.push(`run.device=${JSON.stringify(device)}`);
  for (const o of overrides) if (!o.includes('=')) throw new UsageError(`train: '${o}' is not an option nor a section.key=value override`);
  const c = loadConfig(file, overrides);
  const r = await train(c, reporter());
  if (r.knnTop1 !== undefined) console.log(JSON.stringify({ knn_top1: r.knnTop1, epochs: r.epochsDone, iterations: r.iterations }));
  return r.interrupted ? 130 : 0;
}

/** `swav eval knn --weights FILE|RUN_CHECKPOINT|ZOO_NAME --data PATH [--type T] [--arch A] ...` */
export async function evalCommand(argv: string[], flags: (argv: string[]) => Flags): Promise<number> {
  const [what, ...rest] = argv;
  if (what !== 'knn') throw new UsageError(`eval: unknown evaluation '${what ?? ''}' (knn)`);
  const f = flags(rest);
  const weights = f.string('weights');
  const data = f.optional('data');
  const type = f.optional('type') as DatasetType | undefined;
  const arch = f.optional('arch') as Architecture | undefined;
  const k = f.int('k', 200);
  const t = f.number('temperature', 0.1);
  const trainSplit = f.optional('train-split');
  const testSplit = f.optional('split');
  const device = f.optional('device');
  f.done();
  if (type && !DATASET_TYPES.includes(type)) throw new UsageError(`eval knn: --type must be one of ${DATASET_TYPES.join(', ')}`);
  if (arch && !(arch in architectures)) throw new UsageError(`eval knn: --arch must be one of ${Object.keys(architectures).join(', ')}`);
  const path = existsSync(weights) ? weights : await resolveWeights(weights);
  const ck = torch.load(path);
  let c: Config;
  let model: ReturnType<typeof buildModel>;
  if (typeof ck?.config === 'string') { // one of our training checkpoints: its config says what it is
    c = JSON.parse(ck.config);
    model = buildModel(c);
    torch.tidy(() => model.loadStateDict(ck.state_dict));
  } else {
    if (!arch) throw new UsageError('eval knn: --arch is needed for weights that are not a swav training checkpoint');
    c = validateConfig({ data: { path: data ?? '.', type: type ?? 'folder' }, model: { arch } });
    model = modelFromFile(arch, path);
  }
  torch.tidy(() => Object.values(ck).forEach((v: unknown) => v instanceof torch.Tensor && v.dispose()));
  c.data.path = data ?? c.data.path;
  c.data.type = type ?? c.data.type;
  c.data.eval_train_split = trainSplit ?? c.data.eval_train_split;
  c.data.eval_split = testSplit ?? c.data.eval_split;
  c.run.knn_k = k;
  c.run.knn_temperature = t;
  c.run.device = device ?? c.run.device;
  if (!c.data.path) throw new UsageError('eval knn: --data PATH is required');
  model.to({ device: c.run.device, memoryFormat: 'channelsLast' });
  const top1 = await evaluateKnn(model, c, (s) => process.stderr.write(`${s}\n`));
  model.dispose();
  console.log(JSON.stringify({ knn_top1: top1, k, temperature: t }));
  if (existsSync(join(dirname(path), CHECKPOINT)) || typeof ck?.config === 'string') {
    appendFileSync(join(dirname(path), 'metrics.jsonl'), `${JSON.stringify({ type: 'eval', metric: 'knn_top1', value: top1, k, temperature: t, data: c.data.path, split: c.data.eval_split, time: new Date().toISOString() })}\n`);
  }
  return 0;
}
