"""Builds the torchvision classification model of a run, with the small-input stem if asked."""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import ResNet

from larsbench.profile.schema import ModelConfig


def classification_models() -> list[str]:
    """Names torchvision can build as image classifiers."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def build_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    names = classification_models()
    if cfg.arch not in names:
        raise ValueError(
            f"model.arch: torchvision has no classification model {cfg.arch!r}; "
            f"allowed: {', '.join(names)}"
        )
    kwargs: dict[str, object] = {"weights": None, "num_classes": num_classes}
    if cfg.zero_init_residual:
        kwargs["zero_init_residual"] = True
    model = torchvision.models.get_model(cfg.arch, **kwargs)
    if cfg.width != 1.0:
        model = _narrow_resnet(model, cfg.width, num_classes, cfg.zero_init_residual, cfg.arch)
    if cfg.small_input:
        _small_input_stem(model, cfg.arch)
    return model


class _NarrowResNet(ResNet):
    """torchvision's ResNet with every stage's channel count multiplied by `width`."""

    def __init__(self, width: float, *args: object, **kwargs: object) -> None:
        self._width = width
        super().__init__(*args, **kwargs)
        stem = self.layer1[0].conv1.in_channels
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = nn.BatchNorm2d(stem)
        self.fc = nn.Linear(_out_channels(self.layer4[-1]), self.fc.out_features)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):  # type: ignore[override]
        if planes == 64 and not hasattr(self, "layer1"):
            self.inplanes = max(4, round(64 * self._width))  # the stem's width, set before layer1
        return super()._make_layer(
            block, max(4, round(planes * self._width)), blocks, stride, dilate
        )


def _out_channels(block: nn.Module) -> int:
    last_bn = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)][-1]
    return last_bn.num_features


def _narrow_resnet(
    model: nn.Module, width: float, num_classes: int, zero_init_residual: bool, arch: str
) -> nn.Module:
    """The same ResNet (block type, blocks per stage) at `width` times the channels."""
    if not isinstance(model, ResNet):
        raise ValueError(f"model.width: supported for ResNet models only, not {arch!r}")
    block = type(model.layer1[0])
    layers = [len(model.layer1), len(model.layer2), len(model.layer3), len(model.layer4)]
    return _NarrowResNet(
        width, block, layers, num_classes=num_classes, zero_init_residual=zero_init_residual
    )


def _small_input_stem(model: nn.Module, arch: str) -> None:
    """CIFAR-style stem for inputs <= 64 px: a 3x3 stride-1 first conv and no max-pool."""
    conv1 = getattr(model, "conv1", None)
    if not isinstance(conv1, nn.Conv2d) or not hasattr(model, "maxpool"):
        raise ValueError(f"model.small_input: supported for ResNet-style models, not {arch!r}")
    model.conv1 = nn.Conv2d(conv1.in_channels, conv1.out_channels, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()


def main() -> None:
    """`python -m larsbench.train.model NAME...`: exit 0 when torchvision has every name."""
    import sys

    names = set(classification_models())
    unknown = [a for a in sys.argv[1:] if a not in names]
    print("\n".join(unknown))
    sys.exit(1 if unknown else 0)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
