// The published SwAV, DeepCluster-v2 and SeLa-v2 checkpoints (the model zoo of the SwAV paper's release).
import type { Architecture } from '../models/resnet.js';

export interface ZooModel {
  name: string;
  method: 'SwAV' | 'DeepCluster-v2' | 'SeLa-v2';
  arch: Architecture;
  epochs: number;
  batchSize: number;
  crops: string;
  /** ImageNet top-1 of a linear classifier on the frozen features, as published. */
  top1: number;
  /** Parameters of the trunk, as published for the wide ones. */
  params?: string;
  url: string;
  /** The file's SHA-256 where one is known (the reference publishes none; a download records its own). */
  sha256?: string;
}

export const DEFAULT_BASE_URL = 'https://dl.fbaipublicfiles.com/deepcluster/';

const zoo = (
  name: string,
  method: ZooModel['method'],
  arch: Architecture,
  epochs: number,
  batchSize: number,
  crops: string,
  top1: number,
  params?: string,
): ZooModel => ({ name, method, arch, epochs, batchSize, crops, top1, params, url: `${DEFAULT_BASE_URL}${name}.pth.tar` });

export const MODELS: readonly ZooModel[] = [
  zoo('swav_800ep_pretrain', 'SwAV', 'resnet50', 800, 4096, '2x224 + 6x96', 75.3),
  zoo('swav_400ep_pretrain', 'SwAV', 'resnet50', 400, 4096, '2x224 + 6x96', 74.6),
  zoo('swav_200ep_pretrain', 'SwAV', 'resnet50', 200, 4096, '2x224 + 6x96', 73.9),
  zoo('swav_100ep_pretrain', 'SwAV', 'resnet50', 100, 4096, '2x224 + 6x96', 72.1),
  zoo('swav_200ep_bs256_pretrain', 'SwAV', 'resnet50', 200, 256, '2x224 + 6x96', 72.7),
  zoo('swav_400ep_bs256_pretrain', 'SwAV', 'resnet50', 400, 256, '2x224 + 6x96', 74.3),
  zoo('swav_400ep_2x224_pretrain', 'SwAV', 'resnet50', 400, 4096, '2x224', 70.1),
  zoo('deepclusterv2_800ep_pretrain', 'DeepCluster-v2', 'resnet50', 800, 4096, '2x224 + 6x96', 75.2),
  zoo('deepclusterv2_400ep_pretrain', 'DeepCluster-v2', 'resnet50', 400, 4096, '2x160 + 4x96', 74.3),
  zoo('deepclusterv2_400ep_2x224_pretrain', 'DeepCluster-v2', 'resnet50', 400, 4096, '2x224', 70.2),
  zoo('selav2_400ep_pretrain', 'SeLa-v2', 'resnet50', 400, 4096, '2x160 + 4x96', 71.8),
  zoo('selav2_400ep_2x224_pretrain', 'SeLa-v2', 'resnet50', 400, 4096, '2x224', 67.2),
  zoo('swav_RN50w2_400ep_pretrain', 'SwAV', 'resnet50w2', 400, 4096, '2x224 + 6x96', 77.3, '94M'),
  zoo('swav_RN50w4_400ep_pretrain', 'SwAV', 'resnet50w4', 400, 4096, '2x224 + 6x96', 77.9, '375M'),
  zoo('swav_RN50w5_400ep_pretrain', 'SwAV', 'resnet50w5', 400, 4096, '2x224 + 6x96', 78.5, '586M'),
];

/** torch.hub's entry points in the reference's hubconf.py, as aliases. */
export const ALIASES: Record<string, string> = {
  resnet50: 'swav_800ep_pretrain',
  resnet50w2: 'swav_RN50w2_400ep_pretrain',
  resnet50w4: 'swav_RN50w4_400ep_pretrain',
  resnet50w5: 'swav_RN50w5_400ep_pretrain',
};

export function findModel(name: string): ZooModel | undefined {
  const n = ALIASES[name] ?? name.replace(/\.pth\.tar$/, '');
  return MODELS.find((m) => m.name === n);
}
