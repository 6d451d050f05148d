"""SwAV's ResNet-50 family in PyTorch, for the goldens: the widened trunk (stem and stages w times wider,
bottleneck inner width = planes), the projection head, L2 normalization and prototypes, built in the order
SwAV's src/resnet50.py builds them (so that one seed gives the same weights), on torchvision's blocks."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import Bottleneck, conv1x1


class SwAVResNet(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), widen=1, normalize=False, output_dim=0, hidden_mlp=0, nmb_prototypes=0):
        super().__init__()
        width = 64 * widen
        self.inplanes = width
        # SwAV pads by 1 and convolves with padding 2: the same as torchvision's padding 3.
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._layer(width, layers[0], 1)
        self.layer2 = self._layer(width * 2, layers[1], 2)
        self.layer3 = self._layer(width * 4, layers[2], 2)
        self.layer4 = self._layer(width * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.l2norm = normalize
        feats = width * 8 * 4
        if output_dim == 0:
            self.projection_head = None
        elif hidden_mlp == 0:
            self.projection_head = nn.Linear(feats, output_dim)
        else:
            self.projection_head = nn.Sequential(nn.Linear(feats, hidden_mlp), nn.BatchNorm1d(hidden_mlp),
                                                 nn.ReLU(inplace=True), nn.Linear(hidden_mlp, output_dim))
        self.prototypes = None
        dim = output_dim or feats
        if isinstance(nmb_prototypes, list):
            self.prototypes = nn.Module()
            for i, k in enumerate(nmb_prototypes):
                self.prototypes.add_module(f"prototypes{i}", nn.Linear(dim, k, bias=False))
        elif nmb_prototypes > 0:
            self.prototypes = nn.Linear(dim, nmb_prototypes, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _layer(self, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes * 4:
            down = nn.Sequential(conv1x1(self.inplanes, planes * 4, stride), nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, down)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_backbone(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward_head(self, x):
        if self.projection_head is not None:
            x = self.projection_head(x)
        if self.l2norm:
            x = F.normalize(x, dim=1, p=2)
        if self.prototypes is None:
            return x
        if isinstance(self.prototypes, nn.Linear):
            return x, self.prototypes(x)
        return x, [getattr(self.prototypes, f"prototypes{i}")(x) for i in range(len(self.prototypes._modules))]

    def forward(self, inputs):
        """A list of crops: the trunk once per run of equal resolutions, the head once on all."""
        if not isinstance(inputs, list):
            return self.forward_backbone(inputs)
        feats, start = [], 0
        while start < len(inputs):
            end = start + 1
            while end < len(inputs) and inputs[end].shape[-1] == inputs[start].shape[-1]:
                end += 1
            feats.append(self.forward_backbone(torch.cat(inputs[start:end])))
            start = end
        return self.forward_head(torch.cat(feats))


def swav_resnet(**kw):
    return SwAVResNet(**kw)


class SwAVOnTorchvision(nn.Module):
    """A torchvision trunk (its stem, stages and pooling at the top level, as SwAV names them) with SwAV's head."""
    def __init__(self, arch="resnet18", hidden_mlp=32, output_dim=16, nmb_prototypes=10):
        super().__init__()
        import torchvision
        t = getattr(torchvision.models, arch)()
        for name in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"]:
            setattr(self, name, getattr(t, name))
        dim = t.fc.in_features
        self.projection_head = nn.Sequential(nn.Linear(dim, hidden_mlp), nn.BatchNorm1d(hidden_mlp), nn.ReLU(inplace=True),
                                             nn.Linear(hidden_mlp, output_dim))
        if isinstance(nmb_prototypes, list):  # SwAV's MultiPrototypes: prototypes0, prototypes1, ... (DeepCluster-v2)
            self.prototypes = nn.Module()
            for i, k in enumerate(nmb_prototypes):
                self.prototypes.add_module(f"prototypes{i}", nn.Linear(output_dim, k, bias=False))
        else:
            self.prototypes = nn.Linear(output_dim, nmb_prototypes, bias=False)

    forward_backbone = SwAVResNet.forward_backbone

    def forward(self, inputs):
        if not isinstance(inputs, list):  # one tensor, as SwAV's resnet takes it
            inputs = [inputs]
        feats, start = [], 0
        while start < len(inputs):
            end = start + 1
            while end < len(inputs) and inputs[end].shape[-1] == inputs[start].shape[-1]:
                end += 1
            feats.append(self.forward_backbone(torch.cat(inputs[start:end])))
            start = end
        x = F.normalize(self.projection_head(torch.cat(feats)), dim=1, p=2)
        if isinstance(self.prototypes, nn.Linear):
            return x, self.prototypes(x)
        return x, [getattr(self.prototypes, f"prototypes{i}")(x) for i in range(len(self.prototypes._modules))]
