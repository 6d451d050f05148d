#!/usr/bin/env node
// The `swav` command line.
import { Flags, UsageError, parse } from './args.js';
import { bench } from './bench.js';
import { extract } from './extract.js';
import { convert, hubCommand } from './files.js';
import { trainCommand } from './train.js';
import { evalCommand } from './eval.js';

const USAGE = `usage: swav <command> [options]

commands:
  train --config FILE [section.key=value ...] [--data PATH] [--out DIR] [--device D]
                 pretraining (method: swav, deepclusterv2 or selav2) in a run directory (running it again
                 resumes); Ctrl-C saves and stops; train --help lists every configuration key
  eval knn --weights RUN_DIR|FILE|ZOO_NAME --data PATH [--type T] [--arch A] [--k 20,200] [--temperature 0.07,0.1]
                 weighted kNN top-1 of the trunk's features (eval split against the train split), several k at once
  eval linear --cached-features --weights RUN_DIR|FILE|ZOO_NAME --data PATH [--epochs 100 --lr 0.3 --batch 256
                 --wd 1e-6 --final-lr 0 --nesterov --seed 31 --cache DIR]
                 eval_linear.py's head on features extracted once (a variant of the protocol: no augmentation)
  eval semisup --weights RUN_DIR|FILE|ZOO_NAME --data PATH (--fraction 0.01|0.1 | --subset FILE) [--epochs 20
                 --lr 0.01 --lr-last-layer 0.2 (1%: 0.02 / 5) --decay-epochs 12,16 --gamma 0.2 --batch 32 --size 224]
                 eval_semisup.py's fine-tuning of the trunk and a new head on a labelled subset
  extract        pooled trunk features: --arch ARCH --weights FILE|ZOO_NAME (--input X.npy | --data DIR)
                 --out F.npy [--batch N] [--device D]
  convert IN OUT between .pth / .pth.tar (zip or legacy) and .safetensors, by extension
  hub list       the published checkpoints
  hub download NAME [--force]
                 into the cache ($SWAV_HOME, default ~/.cache/swav)
  bench step     one SwAV training step on synthetic data (--arch --batch --crops --steps --warmup --device
                 --amp fp32|bf16|fp16 --channels-last 0|1 --json; --profile N: time per operator over N more steps)
  bench extract  feature extraction (--arch --batch --size --steps --amp fp32|bf16 --json)
  bench data     multi-crop decoding and augmentation of the .jpg files in --dir, per core (--crops --json)
  bench load     loading a checkpoint (--file --json)
  bench cluster  DeepCluster-v2's clustering of a random memory bank (--n 60000 --dim 128 --heads 3 --k 3000
                 --banks 2 --iters 10 --json)
`;

const BOOLEANS = ['json', 'help', 'force', 'cached-features', 'nesterov'] as const;
const flagsFor = (command: string) => (argv: string[]) => new Flags(parse(argv, BOOLEANS), command);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  switch (command) {
    case 'bench':
      await bench(rest, flagsFor('bench'));
      return 0;
    case 'train':
      return trainCommand(flagsFor('train')(rest));
    case 'eval':
      return evalCommand(rest, flagsFor('eval'));
    case 'extract':
      await extract(flagsFor('extract')(rest));
      return 0;
    case 'convert':
      convert(flagsFor('convert')(rest));
      return 0;
    case 'hub':
      await hubCommand(rest, flagsFor('hub'));
      return 0;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`swav: ${e.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`swav: error: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.SWAV_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
});
