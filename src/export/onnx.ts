// A ResNet trunk as an ONNX model (opset 17): the eval-mode network from the image to its pooled features, each
// BatchNorm folded into the convolution before it (or kept as BatchNormalization), a dynamic batch dimension, and
// the input's normalization in the model's metadata. Encoded with protobufjs from onnx.proto's messages.
import type { Tensor } from '../torch/tensor.js';
import { noGrad } from '../torch/autograd.js';
import { tidy } from '../torch/scope.js';
import type { BatchNorm2d, Conv2d } from '../nn/layers.js';
import { MaxPool2d } from '../nn/layers.js';
import { type BasicBlock, Bottleneck, type ResNet } from '../models/resnet.js';
import { ModelProto } from './onnx_proto.js';

export interface OnnxExportOptions {
  /** Fold each BatchNorm into its convolution (the default), or keep BatchNormalization nodes. */
  foldBatchNorm?: boolean;
  /** Input channels' normalization, written into the metadata (SwAV's ImageNet mean and std by default). */
  mean?: number[];
  std?: number[];
  /** The architecture's name, for the metadata and the graph's name. */
  arch?: string;
  producerVersion?: string;
}

/** TensorProto.DataType FLOAT; AttributeProto.AttributeType FLOAT, INT, INTS. */
const FLOAT = 1;
const ATTR = { float: 1, int: 2, ints: 7 } as const;
/** An attribute's value: integers and lists of integers as they are, floats wrapped. */
type Attr = number | number[] | { f: number };
const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;

/** Nodes and initializers of one graph, with fresh names. */
class GraphBuilder {
  readonly node: object[] = [];
  readonly initializer: object[] = [];
  #count = 0;

  /** A constant tensor (float32) under `name`. */
  constant(name: string, t: Tensor): string {
    const data = tidy(() => t.float().contiguous().toBytes());
    this.initializer.push({ name, dims: t.shape, data_type: FLOAT, raw_data: data });
    return name;
  }

  /** A node of `op` on `inputs`; returns its output's name. */
  add(op: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    const output = `${op.toLowerCase()}_${this.#count++}`;
    const attribute = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v)
        ? { name, ints: v, type: ATTR.ints }
        : typeof v === 'number'
          ? { name, i: v, type: ATTR.int }
          : { name, f: v.f, type: ATTR.float },
    );
    this.node.push({ input: inputs, output: [output], name: output, op_type: op, attribute });
    return output;
  }
}

/** conv (no bias) then eval BN as one convolution's weight and bias. */
function folded(conv: Conv2d, bn: BatchNorm2d): { weight: Tensor; bias: Tensor } {
  return tidy(() => {
    const scale = bn.weight!.div(bn.runningVar!.add(bn.eps).sqrt());
    const bias = (conv.bias ? conv.bias.sub(bn.runningMean!) : bn.runningMean!.neg()).mul(scale).add(bn.bias!);
    return { weight: conv.weight.mul(scale.view(-1, 1, 1, 1)), bias };
  });
}

/** Emits conv + BN (folded or not) on `x` under the parameter prefix `name`; returns the output's name. */
function convBn(g: GraphBuilder, x: string, name: string, conv: Conv2d, bn: BatchNorm2d, fold: boolean): string {
  const [kh, kw] = pair(conv.kernelSize, 1);
  const [sh, sw] = pair(conv.options.stride, 1);
  const [ph, pw] = pair(conv.options.padding, 0);
  const attrs = {
    kernel_shape: [kh, kw],
    strides: [sh, sw],
    pads: [ph, pw, ph, pw],
    dilations: pair(conv.options.dilation, 1),
    group: conv.options.groups ?? 1,
  };
  if (fold) {
    const { weight, bias } = folded(conv, bn);
    try {
      return g.add('Conv', [x, g.constant(`${name}.weight`, weight), g.constant(`${name}.bias`, bias)], attrs);
    } finally {
      weight.dispose();
      bias.dispose();
    }
  }
  const y = g.add('Conv', [x, g.constant(`${name}.conv.weight`, conv.weight)], attrs);
  const p = `${name}.bn`;
  return g.add(
    'BatchNormalization',
    [
      y,
      g.constant(`${p}.weight`, bn.weight!),
      g.constant(`${p}.bias`, bn.bias!),
      g.constant(`${p}.running_mean`, bn.runningMean!),
      g.constant(`${p}.running_var`, bn.runningVar!),
    ],
    { epsilon: { f: bn.eps } },
  );
}

/** The blocks of one stage. */
function stage(g: GraphBuilder, x: string, layer: ResNet['layer1'], name: string, fold: boolean): string {
  let y = x;
  [...layer.children()].forEach((block, i) => {
    const p = `${name}.${i}`;
    const b = block as BasicBlock | Bottleneck;
    const pairs: [Conv2d, BatchNorm2d][] =
      b instanceof Bottleneck
        ? [
            [b.conv1, b.bn1],
            [b.conv2, b.bn2],
            [b.conv3, b.bn3],
          ]
        : [
            [b.conv1, b.bn1],
            [b.conv2, b.bn2],
          ];
    let out = y;
    pairs.forEach(([c, n], k) => {
      out = convBn(g, out, `${p}.conv${k + 1}`, c, n, fold);
      if (k < pairs.length - 1) out = g.add('Relu', [out]);
    });
    const shortcut = b.downsample
      ? convBn(g, y, `${p}.downsample`, b.downsample.at(0) as Conv2d, b.downsample.at(1) as BatchNorm2d, fold)
      : y;
    y = g.add('Relu', [g.add('Add', [out, shortcut])]);
  });
  return y;
}

const SWAV_MEAN = [0.485, 0.456, 0.406];
const SWAV_STD = [0.228, 0.224, 0.225];

/** The trunk of `model` (eval mode: running statistics) as ONNX bytes: input `image` N x C x H x W, output `features` N x D. */
export function exportOnnx(model: ResNet, o: OnnxExportOptions = {}): Uint8Array {
  const fold = o.foldBatchNorm ?? true;
  const g = new GraphBuilder();
  const inChannels = model.conv1.inChannels;
  noGrad(() => {
    let x = g.add('Relu', [convBn(g, 'image', 'conv1', model.conv1, model.bn1, fold)]);
    if (model.maxpool instanceof MaxPool2d) {
      const m = model.maxpool;
      const [p] = pair(m.options.padding, 0);
      x = g.add('MaxPool', [x], {
        kernel_shape: pair(m.kernelSize, 1),
        strides: pair(m.options.stride ?? m.kernelSize, 1),
        pads: [p, p, p, p],
      });
    }
    for (const [i, layer] of [model.layer1, model.layer2, model.layer3, model.layer4].entries())
      x = stage(g, x, layer, `layer${i + 1}`, fold);
    x = g.add('Flatten', [g.add('GlobalAveragePool', [x])], { axis: 1 });
    (g.node[g.node.length - 1] as { output: string[] }).output = ['features'];
  });
  const tensorType = (dims: (number | string)[]) => ({
    tensor_type: { elem_type: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) } },
  });
  const mean = o.mean ?? SWAV_MEAN;
  const std = o.std ?? SWAV_STD;
  const model_ = ModelProto.fromObject({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    producer_name: 'swav',
    producer_version: o.producerVersion ?? '',
    doc_string: `${o.arch ?? 'ResNet'} trunk (eval mode${fold ? ', BatchNorm folded' : ''}): pooled features of images normalized per channel as (x / 255 - mean) / std`,
    graph: {
      name: o.arch ?? 'resnet',
      node: g.node,
      initializer: g.initializer,
      input: [{ name: 'image', type: tensorType(['batch', inChannels, 'height', 'width']) }],
      output: [{ name: 'features', type: tensorType(['batch', model.numFeatures]) }],
    },
    metadata_props: [
      { key: 'normalization', value: 'per channel: (pixel / 255 - mean) / std, RGB, NCHW float32' },
      { key: 'mean', value: JSON.stringify(mean) },
      { key: 'std', value: JSON.stringify(std) },
      { key: 'features', value: String(model.numFeatures) },
    ],
  });
  return ModelProto.encode(model_).finish();
}
