// `swav extract`: pooled trunk features, in eval mode, of an .npy batch of images or of a folder of images.
import { existsSync, writeFileSync } from 'node:fs';
import { torch } from '../index.js';
import { architectures, type Architecture } from '../models/resnet.js';
import { FrozenTrunk } from '../models/inference.js';
import { downloadModel, findModel, modelFromFile } from '../hub/index.js';
import { listImages, loadEvalImages } from '../data/image.js';
import { Option, type Command } from 'commander';
import { UsageError, action, examples, int, subcommand } from './options.js';
import { progressBar } from './progress.js';
import type { Tensor } from '../torch/tensor.js';

/** A zoo name or alias downloads (or comes from the cache); anything else is a file. */
export async function resolveWeights(weights: string): Promise<string> {
  if (!findModel(weights) || /[/\\]|\.(pth|pt|tar|safetensors|bin|ckpt)$/i.test(weights)) {
    if (!existsSync(weights)) throw new UsageError(`--weights ${weights} is neither a file nor a zoo name (swav hub list)`);
    return weights;
  }
  return downloadModel(weights, { onProgress: progressBar(process.stderr) });
}

/** Features of `images` (N x C x H x W, normalized), `batch` at a time, on the CPU. */
export function features(trunk: FrozenTrunk, images: Tensor, batch: number): Tensor {
  const n = images.shape[0];
  const parts: Tensor[] = [];
  for (let i = 0; i < n; i += batch) {
    parts.push(torch.tidy(() => trunk.forward(images.narrow(0, i, Math.min(batch, n - i))).cpu()));
  }
  try {
    return torch.cat(parts);
  } finally {
    parts.forEach((p) => p.dispose());
  }
}

interface ExtractOptions {
  arch: Architecture;
  weights: string;
  input?: string;
  data?: string;
  out: string;
  batch: number;
  device: string;
  amp: 'fp32' | 'bf16';
}

async function extract(o: ExtractOptions): Promise<number> {
  const { arch, weights, input, data, out, batch, device, amp } = o;
  if (!input === !data) throw new UsageError('extract: give exactly one of --input X.npy and --data DIR');
  if (!out.endsWith('.npy')) throw new UsageError('extract: --out must name an .npy file');
  const model = modelFromFile(arch, await resolveWeights(weights));
  const trunk = new FrozenTrunk(model.eval(), { dtype: amp === 'bf16' ? 'bfloat16' : 'float32', device });
  model.dispose();
  let feats: Tensor;
  if (input) {
    const images = torch.load(input) as Tensor;
    if (!(images instanceof torch.Tensor) || images.ndim !== 4 || images.shape[1] !== 3) {
      throw new Error(
        `extract: ${input} must hold an N x 3 x H x W array of normalized images, it holds ${images instanceof torch.Tensor ? `shape [${images.shape}]` : 'no tensor'}`,
      );
    }
    feats = features(trunk, images, batch);
    images.dispose();
  } else {
    const files = listImages(data!);
    if (!files.length) throw new Error(`extract: no images (jpg, png, webp, ...) under ${data}`);
    const parts: Tensor[] = [];
    const names: string[] = [];
    const bar = progressBar(process.stderr);
    for (let i = 0; i < files.length; i += batch) {
      const { images, ok, skipped } = await loadEvalImages(files.slice(i, i + batch));
      for (const s of skipped) process.stderr.write(`swav: warning: skipped ${s}\n`);
      if (ok.length) parts.push(features(trunk, images, batch));
      images.dispose();
      names.push(...ok);
      bar({
        status: 'progress',
        name: 'images',
        loaded: Math.min(i + batch, files.length),
        total: files.length,
        progress: (100 * Math.min(i + batch, files.length)) / files.length,
      });
    }
    feats = torch.cat(parts);
    parts.forEach((p) => p.dispose());
    writeFileSync(out.replace(/\.npy$/, '.files.txt'), `${names.join('\n')}\n`);
    process.stderr.write(`\n${names.length} images, ${files.length - names.length} skipped\n`);
  }
  torch.save(feats, out);
  process.stderr.write(`wrote ${out}: features [${feats.shape}]\n`);
  feats.dispose();
  trunk.dispose();
  return 0;
}

export function extractCommand(swav: Command): void {
  subcommand(swav, 'extract', 'pooled trunk features (eval mode) of an .npy batch of images or of a folder of images, into an .npy file')
    .addOption(new Option('--arch <arch>', 'the architecture').choices(Object.keys(architectures)).default('resnet50'))
    .requiredOption('--weights <file|zoo-name>', 'a checkpoint file or a zoo name (swav hub list)')
    .option('--input <x.npy>', 'N x 3 x H x W normalized images')
    .option('--data <dir>', 'a folder of images (the names go to OUT.files.txt)')
    .requiredOption('--out <f.npy>', 'where the features go')
    .option('--batch <n>', 'images per forward', int, 64)
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .addOption(new Option('--amp <dtype>', 'compute dtype').choices(['fp32', 'bf16']).default('fp32'))
    .addHelpText('after', examples('swav extract --weights swav_800ep --data photos/ --out feats.npy'))
    .action(action(extract));
}
