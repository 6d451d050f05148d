// `swav export --onnx --weights MODEL --out OUT.onnx [--arch ARCH] [--keep-bn] [--gallery DIR]`: the trunk as an
// ONNX model, and with --gallery the prototype gallery the browser example (examples/browser/) shows beside it.
import { mkdirSync, readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { Option, type Command } from 'commander';
import { architectures, type Architecture } from '../models/resnet.js';
import { exportOnnx } from '../export/onnx.js';
import { writeGallery } from '../export/gallery.js';
import { writeFileAtomic } from '../torch/io/atomic.js';
import { UsageError, action, examples, subcommand } from './options.js';
import { loadWeights } from './weights.js';

interface ExportOptions {
  onnx?: boolean;
  arch?: Architecture;
  weights: string;
  out: string;
  keepBn?: boolean;
  gallery?: string;
}

const version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function exportModel(o: ExportOptions): Promise<number> {
  if (!o.onnx) throw new UsageError('export: name the format: --onnx (the one there is)');
  if (!o.out.endsWith('.onnx')) throw new UsageError('export: --out must name an .onnx file');
  // the browser example serves the gallery's directory alone: the model must be found inside it
  const modelPath = o.gallery === undefined ? '' : relative(resolve(o.gallery), resolve(o.out));
  if (o.gallery !== undefined && (modelPath.split(sep)[0] === '..' || isAbsolute(modelPath))) {
    throw new UsageError(`export: --out ${o.out} must be inside --gallery ${o.gallery} (the browser example serves that directory alone)`);
  }
  const { model, config } = await loadWeights('export', o.weights, o.arch);
  try {
    if (o.gallery !== undefined && !config) {
      throw new UsageError('export: --gallery needs a run directory or a swav training checkpoint (its config names the training data)');
    }
    const arch = config?.model.arch ?? o.arch;
    const bytes = exportOnnx(model.eval(), {
      foldBatchNorm: !o.keepBn,
      arch,
      producerVersion: version,
      ...(config ? { mean: config.crops.mean, std: config.crops.std } : {}),
    });
    if (o.gallery !== undefined) mkdirSync(o.gallery, { recursive: true });
    writeFileAtomic(o.out, bytes);
    process.stderr.write(
      `wrote ${o.out}: ${arch} trunk, input image [batch, ${model.conv1.inChannels}, H, W] -> features [batch, ${model.numFeatures}], ` +
        `opset 17, ${(bytes.length / 2 ** 20).toFixed(1)} MB\n`,
    );
    if (o.gallery !== undefined) {
      const g = await writeGallery(o.gallery, modelPath.split(sep).join('/'), model, config!);
      process.stderr.write(
        `wrote ${o.gallery}: gallery.json, ${g.features.file} and images/ of ${g.images.length} training images, ` +
          `${new Set(g.images.map((i) => i.prototype)).size} prototypes picked (for examples/browser/)\n`,
      );
    }
  } finally {
    model.dispose();
  }
  return 0;
}

export function exportCommand(swav: Command): void {
  subcommand(
    swav,
    'export',
    'the trunk (eval mode, pooled features, no head) as an ONNX model: opset 17, a dynamic batch, the input normalization in its metadata',
  )
    .option('--onnx', 'ONNX (the format there is)')
    .requiredOption('--weights <run|file|zoo-name>', 'a run directory, a checkpoint file or a zoo name (swav hub list)')
    .addOption(
      new Option('--arch <arch>', 'the architecture of weights that are not a swav training checkpoint').choices(
        Object.keys(architectures),
      ),
    )
    .requiredOption('--out <file.onnx>', 'where the model goes')
    .option('--keep-bn', 'BatchNormalization nodes instead of folding each BatchNorm into its convolution')
    .option(
      '--gallery <dir>',
      "also write a run's prototype gallery into DIR (its first 512 training images: prototype, " +
        'normalized features, thumbnail), for examples/browser/; --out must be inside DIR',
    )
    .addHelpText(
      'after',
      examples(
        'swav export --onnx --arch resnet50 --weights swav_800ep --out swav_rn50.onnx',
        'swav export --onnx --weights runs/quickstart-fashion-mnist --out quickstart.onnx',
        'swav export --onnx --weights runs/quickstart-fashion-mnist --out web/model.onnx --gallery web',
      ),
    )
    .action(action(exportModel));
}
