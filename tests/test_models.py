"""Model factories: the small CNN is tested with the training loop; here the pretrained backbones."""

import numpy as np
import pytest
import skimage.data
import torch

from medlab import models


def test_to_imagenet_input_repeats_grey_and_normalises():
    x = torch.full((2, 1, 8, 8), 0.5)
    out = models.to_imagenet_input(x, size=16)
    assert out.shape == (2, 3, 16, 16)
    expected = (0.5 - torch.tensor(models.IMAGENET_MEAN)) / torch.tensor(models.IMAGENET_STD)
    torch.testing.assert_close(out[0, :, 3, 3], expected)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        models.to_imagenet_input(torch.zeros(2, 2, 8, 8))


def test_efficientnet_weights_recognise_photos():
    """Loaded weights are really ImageNet's: scikit-image's bundled photos get their classes."""
    model = models.efficientnet_lite0_imagenet().eval()
    photos = {"chelsea": {281, 282, 285}, "coffee": {967}}  # tabby / tiger / Egyptian cat; espresso
    for name, classes in photos.items():
        image = torch.as_tensor(getattr(skimage.data, name)()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            top = model(models.to_imagenet_input(image, size=224)).argmax(1).item()
        assert top in classes, (name, top)


def test_imagenet_backbone_returns_features(monkeypatch):
    backbone, n_features, source = models.imagenet_backbone()
    assert "EfficientNet-Lite0" in source and n_features == 1280
    with torch.no_grad():
        assert backbone.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 1280)


def test_imagenet_backbone_does_not_depend_on_the_torch_cache(monkeypatch):
    monkeypatch.setattr(models, "torchvision_weights_in_cache", lambda filename="": "/no/such/resnet18.pth")
    assert "EfficientNet-Lite0" in models.imagenet_backbone()[2]  # the default ignores the cache
    monkeypatch.setattr(models, "torchvision_weights_in_cache", lambda filename="": None)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        models.imagenet_backbone("resnet18")
    with pytest.raises(ValueError, match="unknown ImageNet backbone 'vgg'"):
        models.imagenet_backbone("vgg")


def test_torchvision_cache_is_only_looked_up(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert models.torchvision_weights_in_cache() is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "resnet18-f37072fd.pth").write_bytes(b"")
    assert models.torchvision_weights_in_cache().endswith("resnet18-f37072fd.pth")


def test_efficientnet_classifier_takes_grey_images_and_keeps_imagenet_features():
    pretrained = models.efficientnet_lite0_classifier(outputs=2)
    random = models.efficientnet_lite0_classifier(outputs=2, pretrained=False)
    with torch.no_grad():
        assert pretrained.eval()(torch.rand(3, 1, 32, 32)).shape == (3, 2)
    reference = models.efficientnet_lite0_imagenet().conv_stem.weight
    torch.testing.assert_close(pretrained[1].conv_stem.weight, reference)
    assert not torch.allclose(random[1].conv_stem.weight, reference)
    assert isinstance(pretrained[0], models.ImageNetInput)


def test_fcos_detector_keeps_the_size_trains_batch_norm_and_returns_boxes():
    torch.manual_seed(0)
    model = models.fcos_detector(num_classes=1, size=64)
    assert model.transform.min_size == (64,) and model.transform.max_size == 64
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert not any(type(m).__name__ == "FrozenBatchNorm2d" for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[10.0, 10.0, 18.0, 18.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    losses = model.train()(images, targets)
    assert set(losses) == {"classification", "bbox_regression", "bbox_ctrness"}
    sum(losses.values()).backward()
    with torch.no_grad():
        out = model.eval()(images)
    assert len(out) == 2 and out[0]["boxes"].shape[1] == 4
    with pytest.raises(ValueError, match="one anchor size per"):
        models.fcos_detector(anchor_sizes=(8, 16))
