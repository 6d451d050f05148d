// Inference-only trunks: every eval-mode BatchNorm folded into the convolution before it, weights cast once to
// the inference dtype and laid out channels_last, run without autograd. What `swav extract` and kNN use.
import type { Tensor } from '../torch/tensor.js';
import { conv2d, maxPool2d, adaptiveAvgPool2d, avgPool2d } from '../torch/functional.js';
import { noGrad } from '../torch/autograd.js';
import { keep, tidy } from '../torch/scope.js';
import type { Conv2d, BatchNorm2d } from '../nn/layers.js';
import { MaxPool2d } from '../nn/layers.js';
import { BasicBlock, Bottleneck, type ResNet } from './resnet.js';

interface FoldedConv {
  weight: Tensor;
  bias: Tensor;
  stride: number | [number, number];
  padding: number | [number, number];
}

/** conv then BN (eval) == one conv: w * g / sqrt(var + eps), b' = beta + (b - mean) * g / sqrt(var + eps). */
function fold(conv: Conv2d, bn: BatchNorm2d, dtype: 'float32' | 'bfloat16', device: string): FoldedConv {
  return tidy(() => {
    const scale = bn.weight!.div(bn.runningVar!.add(bn.eps).sqrt());
    const weight = conv.weight.mul(scale.view(-1, 1, 1, 1));
    const shift = (conv.bias ? conv.bias.sub(bn.runningMean!) : bn.runningMean!.neg()).mul(scale).add(bn.bias!);
    const to = (t: Tensor, format: 'channelsLast' | undefined) =>
      keep(t.to({ dtype, device, memoryFormat: format }).contiguous(format ?? 'contiguous'));
    return {
      weight: to(weight, 'channelsLast'),
      bias: to(shift, undefined),
      stride: conv.options.stride ?? 1,
      padding: conv.options.padding ?? 0,
    };
  });
}

type Step = (x: Tensor) => Tensor;

/**
 * How the last stage's map becomes features: 'global' average pooling ([N, C], the default), or eval_linear.py's
 * AvgPool2d(6, stride 1) without global pooling ([N, C, h - 5, w - 5]: 2048 x 2 x 2 for ResNet-50 at 224 px).
 */
export type FeaturePool = 'global' | 'avg6';

export class FrozenTrunk {
  readonly #steps: Step[] = [];
  readonly #tensors: Tensor[] = [];

  constructor(
    model: ResNet,
    readonly o: { dtype?: 'float32' | 'bfloat16'; device?: string; pool?: FeaturePool } = {},
  ) {
    const dtype = o.dtype ?? 'float32';
    const device = o.device ?? 'cpu';
    const f = (c: Conv2d, b: BatchNorm2d) => {
      const r = fold(c, b, dtype, device);
      this.#tensors.push(r.weight, r.bias);
      return (x: Tensor) => conv2d(x, r.weight, r.bias, { stride: r.stride, padding: r.padding });
    };
    const stem = f(model.conv1, model.bn1);
    const pool = model.maxpool instanceof MaxPool2d ? model.maxpool : null;
    this.#steps.push((x) => {
      const y = stem(x).relu_();
      if (!pool) return y;
      try {
        return maxPool2d(y, pool.kernelSize, pool.options);
      } finally {
        y.dispose();
      }
    });
    for (const layer of [model.layer1, model.layer2, model.layer3, model.layer4]) {
      for (const block of layer.children()) {
        const down = block instanceof BasicBlock || block instanceof Bottleneck ? block.downsample : null;
        const shortcut = down ? f(down.at(0) as Conv2d, down.at(1) as BatchNorm2d) : null;
        const convs =
          block instanceof Bottleneck
            ? [f(block.conv1, block.bn1), f(block.conv2, block.bn2), f(block.conv3, block.bn3)]
            : [f((block as BasicBlock).conv1, (block as BasicBlock).bn1), f((block as BasicBlock).conv2, (block as BasicBlock).bn2)];
        this.#steps.push((x) => {
          let y = x;
          convs.forEach((c, i) => {
            const next = c(y);
            if (y !== x) y.dispose();
            y = i < convs.length - 1 ? next.relu_() : next;
          });
          const id = shortcut ? shortcut(x) : x;
          y.add_(id).relu_();
          if (id !== x) id.dispose();
          return y;
        });
      }
    }
  }

  /** Pooled features, float32: [N, numFeatures], or [N, numFeatures, h - 5, w - 5] under the avg6 pool. */
  forward(x: Tensor): Tensor {
    return noGrad(() =>
      tidy(() => {
        let y = x.to({ dtype: this.o.dtype ?? 'float32', device: this.o.device ?? 'cpu', memoryFormat: 'channelsLast' });
        for (const step of this.#steps) {
          const next = step(y);
          if (y !== x && next !== y) y.dispose();
          y = next;
        }
        if (this.o.pool !== 'avg6') return adaptiveAvgPool2d(y, [1, 1]).flatten(1).float();
        const [, , h, w] = y.shape;
        if (h < 6 || w < 6) {
          throw new Error(
            `the avg6 pool needs a last feature map of at least 6 x 6 (224 px images for a ResNet-50), this one is ${h} x ${w}: use larger images (--size) or the global pool`,
          );
        }
        return avgPool2d(y, 6, { stride: 1 }).float().contiguous();
      }),
    );
  }

  dispose(): void {
    for (const t of this.#tensors) t.dispose();
  }
}
