// `swav export --onnx --weights MODEL --out OUT.onnx [--arch ARCH] [--keep-bn]`: the trunk as an ONNX model.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { architectures, type Architecture } from '../models/resnet.js';
import { exportOnnx } from '../export/onnx.js';
import { writeFileAtomic } from '../torch/io/atomic.js';
import { UsageError, action, examples, subcommand } from './options.js';
import { loadWeights } from './weights.js';

interface ExportOptions { onnx?: boolean; arch?: Architecture; weights: string; out: string; keepBn?: boolean }

const version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function exportModel(o: ExportOptions): Promise<number> {
  if (!o.onnx) throw new UsageError('export: name the format: --onnx (the one there is)');
  if (!o.out.endsWith('.onnx')) throw new UsageError('export: --out must name an .onnx file');
  const { model, config } = await loadWeights('export', o.weights, o.arch);
  try {
    const arch = config?.model.arch ?? o.arch;
    const bytes = exportOnnx(model.eval(), {
      foldBatchNorm: !o.keepBn, arch, producerVersion: version,
      ...(config ? { mean: config.crops.mean, std: config.crops.std } : {}),
    });
    writeFileAtomic(o.out, bytes);
    process.stderr.write(`wrote ${o.out}: ${arch} trunk, input image [batch, ${model.conv1.inChannels}, H, W] -> features [batch, ${model.numFeatures}], ` +
      `opset 17, ${(bytes.length / 2 ** 20).toFixed(1)} MB\n`);
  } finally {
    model.dispose();
  }
  return 0;
}

export function exportCommand(swav: Command): void {
  subcommand(swav, 'export', 'the trunk (eval mode, pooled features, no head) as an ONNX model: opset 17, a dynamic batch, the input normalization in its metadata')
    .option('--onnx', 'ONNX (the format there is)')
    .requiredOption('--weights <run|file|zoo-name>', 'a run directory, a checkpoint file or a zoo name (swav hub list)')
    .addOption(new Option('--arch <arch>', 'the architecture of weights that are not a swav training checkpoint').choices(Object.keys(architectures)))
    .requiredOption('--out <file.onnx>', 'where the model goes')
    .option('--keep-bn', 'BatchNormalization nodes instead of folding each BatchNorm into its convolution')
    .addHelpText('after', examples('swav export --onnx --arch resnet50 --weights swav_800ep --out swav_rn50.onnx',
      'swav export --onnx --weights runs/quickstart-fashion-mnist --out quickstart.onnx'))
    .action(action(exportModel));
}
