// The ResNet family with torchvision's layout and state-dict names, SwAV's widened ResNet-50s, a stem for
// small images, and SwAV's head (projection MLP, L2 normalization, prototypes) with its multi-crop forward.
import type { Tensor } from '../torch/tensor.js';
import { cat } from '../torch/functional.js';
import * as F from '../torch/functional.js';
import { Module } from '../nn/module.js';
import { AdaptiveAvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import { constant_, kaimingNormal_ } from '../nn/init.js';

/** Applies `layers` in turn, disposing each intermediate result once the next one has consumed it. */
function chain(x: Tensor, ...layers: Module[]): Tensor {
  let out = x;
  for (const l of layers) {
    const next = l.forward(out) as Tensor;
    if (out !== x && next !== out) out.dispose();
    out = next;
  }
  return out;
}

/** Adds the shortcut in place and applies ReLU in place, as torchvision's `out += identity; relu(out)`. */
function residual(out: Tensor, x: Tensor, downsample: Module | null): Tensor {
  const identity = downsample ? (downsample.forward(x) as Tensor) : x;
  out.add_(identity).relu_();
  if (identity !== x) identity.dispose();
  return out;
}

const conv3x3 = (inC: number, outC: number, stride = 1) => new Conv2d(inC, outC, 3, { stride, padding: 1, bias: false });
const conv1x1 = (inC: number, outC: number, stride = 1) => new Conv2d(inC, outC, 1, { stride, bias: false });

export interface Block extends Module {
  forward(x: Tensor): Tensor;
}
interface BlockType {
  expansion: number;
  new (inplanes: number, planes: number, stride: number, downsample: Sequential | null): Block;
}

export class BasicBlock extends Module implements Block {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  constructor(
    inplanes: number,
    planes: number,
    stride = 1,
    readonly downsample: Sequential | null = null,
  ) {
    super();
    this.conv1 = this.registerModule('conv1', conv3x3(inplanes, planes, stride));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.relu = this.registerModule('relu', new ReLU(true));
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    if (downsample) this.registerModule('downsample', downsample);
  }
  forward(x: Tensor): Tensor {
    return residual(chain(x, this.conv1, this.bn1, this.relu, this.conv2, this.bn2), x, this.downsample);
  }
}

export class Bottleneck extends Module implements Block {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly relu: ReLU;
  constructor(
    inplanes: number,
    planes: number,
    stride = 1,
    readonly downsample: Sequential | null = null,
  ) {
    super();
    // torchvision's width = planes * (base_width / 64) * groups, with base_width 64 and one group.
    this.conv1 = this.registerModule('conv1', conv1x1(inplanes, planes));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes, stride));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.registerModule('conv3', conv1x1(planes, planes * 4));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(planes * 4));
    this.relu = this.registerModule('relu', new ReLU(true));
    if (downsample) this.registerModule('downsample', downsample);
  }
  forward(x: Tensor): Tensor {
    const out = chain(x, this.conv1, this.bn1, this.relu, this.conv2, this.bn2, this.relu, this.conv3, this.bn3);
    return residual(out, x, this.downsample);
  }
}

/** Several prototype heads, named prototypes0, prototypes1, ... as SwAV's MultiPrototypes. */
export class MultiPrototypes extends Module {
  readonly heads: Linear[];
  constructor(outputDim: number, sizes: number[]) {
    super();
    this.heads = sizes.map((k, i) => this.registerModule(`prototypes${i}`, new Linear(outputDim, k, { bias: false })));
  }
  forward(x: Tensor): Tensor[] {
    return this.heads.map((h) => h.forward(x));
  }
}

export interface ResNetOptions {
  /** torchvision's classifier `fc` (0: none, the forward returns pooled features). */
  numClasses?: number;
  /** SwAV's width multiplier: the stem and every stage are `widen` times wider. */
  widen?: number;
  /** Channels after the stem (default 64 * widen); stages have width, 2x, 4x, 8x. */
  width?: number;
  /** 'imagenet': 7x7 stride-2 conv + max-pool; 'small': 3x3 conv, no max-pool (28-32 px images). */
  stem?: 'imagenet' | 'small';
  /** Stride of the 'small' stem's conv (default 1; 2 halves the resolution of every stage, 4x less compute). */
  stemStride?: number;
  inChannels?: number;
  zeroInitResidual?: boolean;
  /** SwAV head: L2-normalize the projected features. */
  normalize?: boolean;
  /** SwAV head: hidden width of the projection MLP (0: a single Linear). */
  hiddenMlp?: number;
  /** SwAV head: projection output size (0: no projection head). */
  outputDim?: number;
  /** SwAV head: number of prototypes, or a list for several heads (0: none). */
  nmbPrototypes?: number | number[];
}

export interface HeadOutput {
  /** The (normalized) projection of every crop, crops stacked in order. */
  embedding: Tensor;
  /** Prototype scores: one matrix, or one per head; null without prototypes. */
  output: Tensor | Tensor[] | null;
}

export class ResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly maxpool: Module;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly avgpool: AdaptiveAvgPool2d;
  readonly fc: Linear | null = null;
  readonly projectionHead: Module | null = null;
  readonly prototypes: Linear | MultiPrototypes | null = null;
  /** Size of the pooled features. */
  readonly numFeatures: number;
  readonly l2norm: boolean;
  #inplanes: number;

  constructor(block: BlockType, layers: [number, number, number, number], o: ResNetOptions = {}) {
    super();
    const width = o.width ?? 64 * (o.widen ?? 1);
    this.#inplanes = width;
    const small = o.stem === 'small';
    this.conv1 = this.registerModule(
      'conv1',
      small
        ? new Conv2d(o.inChannels ?? 3, width, 3, { stride: o.stemStride ?? 1, padding: 1, bias: false })
        : new Conv2d(o.inChannels ?? 3, width, 7, { stride: 2, padding: 3, bias: false }),
    );
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(width));
    this.relu = this.registerModule('relu', new ReLU(true));
    this.maxpool = this.registerModule('maxpool', small ? new Identity() : new MaxPool2d(3, { stride: 2, padding: 1 }));
    this.layer1 = this.registerModule('layer1', this.#makeLayer(block, width, layers[0], 1));
    this.layer2 = this.registerModule('layer2', this.#makeLayer(block, width * 2, layers[1], 2));
    this.layer3 = this.registerModule('layer3', this.#makeLayer(block, width * 4, layers[2], 2));
    this.layer4 = this.registerModule('layer4', this.#makeLayer(block, width * 8, layers[3], 2));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d([1, 1]));
    this.numFeatures = width * 8 * block.expansion;
    if (o.numClasses) this.fc = this.registerModule('fc', new Linear(this.numFeatures, o.numClasses));

    this.l2norm = o.normalize ?? false;
    const outputDim = o.outputDim ?? 0;
    if (outputDim > 0) {
      this.projectionHead = this.registerModule(
        'projection_head',
        o.hiddenMlp
          ? new Sequential(
              new Linear(this.numFeatures, o.hiddenMlp),
              new BatchNorm1d(o.hiddenMlp),
              new ReLU(true),
              new Linear(o.hiddenMlp, outputDim),
            )
          : new Linear(this.numFeatures, outputDim),
      );
    }
    const protos = o.nmbPrototypes ?? 0;
    const headDim = outputDim || this.numFeatures;
    if (Array.isArray(protos)) this.prototypes = this.registerModule('prototypes', new MultiPrototypes(headDim, protos));
    else if (protos > 0) this.prototypes = this.registerModule('prototypes', new Linear(headDim, protos, { bias: false }));

    // After every module exists, as torchvision and SwAV do (so the random draws come in the same order).
    for (const m of this.modules()) {
      if (m instanceof Conv2d) {
        kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      } else if (m instanceof BatchNorm2d) {
        constant_(m.weight!, 1);
        constant_(m.bias!, 0);
      }
    }
    if (o.zeroInitResidual) {
      for (const m of this.modules()) {
        if (m instanceof Bottleneck) constant_(m.bn3.weight!, 0);
        else if (m instanceof BasicBlock) constant_(m.bn2.weight!, 0);
      }
    }
  }

  #makeLayer(block: BlockType, planes: number, blocks: number, stride: number): Sequential {
    let downsample: Sequential | null = null;
    if (stride !== 1 || this.#inplanes !== planes * block.expansion) {
      downsample = new Sequential(conv1x1(this.#inplanes, planes * block.expansion, stride), new BatchNorm2d(planes * block.expansion));
    }
    const layer = new Sequential(new block(this.#inplanes, planes, stride, downsample));
    this.#inplanes = planes * block.expansion;
    for (let i = 1; i < blocks; i++) layer.append(new block(this.#inplanes, planes, 1, null));
    return layer;
  }

  /** The trunk: conv stem, four stages, global average pooling; [N, numFeatures]. */
  forwardBackbone(x: Tensor): Tensor {
    const map = chain(x, this.conv1, this.bn1, this.relu, this.maxpool, this.layer1, this.layer2, this.layer3, this.layer4);
    const pooled = this.avgpool.forward(map);
    map.dispose();
    try {
      return pooled.flatten(1);
    } finally {
      pooled.dispose();
    }
  }

  /** SwAV's head on pooled features: projection, L2 normalization, prototype scores. */
  forwardHead(features: Tensor): HeadOutput {
    let z = this.projectionHead ? (this.projectionHead.forward(features) as Tensor) : features;
    if (this.l2norm) {
      const n = F.normalize(z, 2, 1);
      if (z !== features) z.dispose();
      z = n;
    }
    return { embedding: z, output: this.prototypes ? this.prototypes.forward(z) : null };
  }

  /**
   * SwAV's multi-crop forward: the trunk runs once per run of consecutive crops of equal resolution, the
   * head once on all of them; rows are crops stacked in order (crop 0's batch first).
   */
  forwardCrops(crops: Tensor[]): HeadOutput {
    const feats: Tensor[] = [];
    for (let start = 0; start < crops.length; ) {
      const size = crops[start].shape.slice(-2).join('x');
      let end = start + 1;
      while (end < crops.length && crops[end].shape.slice(-2).join('x') === size) end++;
      const batch = end - start === 1 ? crops[start] : cat(crops.slice(start, end));
      feats.push(this.forwardBackbone(batch));
      if (batch !== crops[start]) batch.dispose();
      start = end;
    }
    const all = feats.length === 1 ? feats[0] : cat(feats);
    if (all !== feats[0]) for (const f of feats) f.dispose();
    const out = this.forwardHead(all);
    if (out.embedding !== all) all.dispose();
    return out;
  }

  /** Logits with a classifier; else pooled features (trunk only) or SwAV's head output for one batch. */
  forward(x: Tensor): Tensor {
    const feats = this.forwardBackbone(x);
    if (!this.fc) return feats;
    try {
      return this.fc.forward(feats);
    } finally {
      feats.dispose();
    }
  }
}

type Defaults = Omit<ResNetOptions, 'widen'>;
const torchvisionDefaults: Defaults = { numClasses: 1000 };

export const resnet18 = (o: ResNetOptions = {}) => new ResNet(BasicBlock, [2, 2, 2, 2], { ...torchvisionDefaults, ...o });
export const resnet34 = (o: ResNetOptions = {}) => new ResNet(BasicBlock, [3, 4, 6, 3], { ...torchvisionDefaults, ...o });
export const resnet50 = (o: ResNetOptions = {}) => new ResNet(Bottleneck, [3, 4, 6, 3], { ...torchvisionDefaults, ...o });
/** SwAV's widened ResNet-50s (not torchvision's wide_resnet50_2): trunk only unless options add a head. */
export const resnet50w2 = (o: ResNetOptions = {}) => new ResNet(Bottleneck, [3, 4, 6, 3], { widen: 2, ...o });
export const resnet50w4 = (o: ResNetOptions = {}) => new ResNet(Bottleneck, [3, 4, 6, 3], { widen: 4, ...o });
export const resnet50w5 = (o: ResNetOptions = {}) => new ResNet(Bottleneck, [3, 4, 6, 3], { widen: 5, ...o });

export const architectures = { resnet18, resnet34, resnet50, resnet50w2, resnet50w4, resnet50w5 } as const;
export type Architecture = keyof typeof architectures;
