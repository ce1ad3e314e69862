"""What simple reference models reach on the synthetic cohort at its default difficulty.

    python benchmarks/difficulty.py            # about 4 minutes on 2 CPU cores

A teaching task is calibrated when a classical method does clearly worse than a small trained
network, and the network does not score perfectly. Three tasks on 128 × 128 radiographs of all
three sites, each with a held-out test set drawn with another seed:

- lung segmentation: Otsu thresholding vs a small MONAI U-Net (Dice);
- nodule detection: a Laplacian-of-Gaussian blob detector vs a U-Net heat-map detector
  (average precision; a detection counts when its centre falls in an unmatched nodule box);
- pneumonia classification: logistic regression on lung intensity statistics vs a small CNN
  (ROC AUC).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from monai.losses import DiceCELoss, DiceFocalLoss
from monai.networks.nets import UNet
from scipy import ndimage as ndi
from skimage.feature import blob_log
from skimage.filters import threshold_otsu
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from medlab.metrics import dice
from medlab.phantoms import chest_radiographs
from medlab.runtime import setup

SIZE, N_TRAIN, N_TEST, STEPS = 128, 480, 160, 300


def centre_average_precision(boxes, detections) -> float:
    """AP of point detections: ``boxes`` per image (M, 4) xyxy (the truth, first), ``detections``
    per image a list of (row, col, score); a detection hits an unmatched box its centre falls in.
    (``medlab.metrics.average_precision`` matches boxes by IoU; these detectors give points.)"""
    scored, n_true = [], sum(len(b) for b in boxes)
    for dets, truth in zip(detections, boxes):
        used = np.zeros(len(truth), bool)
        for r, c, s in sorted(dets, key=lambda d: -d[2]):
            hit = [(i) for i, (x0, y0, x1, y1) in enumerate(truth) if not used[i] and x0 <= c < x1 and y0 <= r < y1]
            if hit:
                used[hit[0]] = True
            scored.append((s, bool(hit)))
    if not scored or n_true == 0:
        return 0.0
    scored.sort(key=lambda t: -t[0])
    tp = np.cumsum([h for _, h in scored])
    precision, recall = tp / np.arange(1, len(scored) + 1), tp / n_true
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # all-point interpolation
    return float(np.sum(np.diff(np.concatenate([[0], recall])) * precision))


def train(net, inputs, targets, loss_fn, device, steps=STEPS, batch=16, lr=2e-3):
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(len(inputs), (batch,), generator=gen)
        opt.zero_grad()
        loss = loss_fn(net(inputs[idx].to(device)), targets[idx].to(device))
        loss.backward()
        opt.step()
    return net.eval()


def unet():
    return UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=1)


def predict(net, inputs, device):
    with torch.no_grad():
        return torch.cat([torch.sigmoid(net(inputs[i:i + 32].to(device))).cpu() for i in range(0, len(inputs), 32)])


def main():
    session = setup("difficulty", profile="default", seed=0)
    sites = ["A", "B", "C"]
    train_set = chest_radiographs(N_TRAIN, seed=100, size=SIZE, pneumonia=0.5, nodules=0.5, sites=(sites * N_TRAIN)[:N_TRAIN])
    test_set = chest_radiographs(N_TEST, seed=200, size=SIZE, pneumonia=0.5, nodules=0.5, sites=(sites * N_TEST)[:N_TEST])
    x_train, x_test = torch.as_tensor(train_set.images), torch.as_tensor(test_set.images)
    lungs = lambda b: b.mask("lung_right") | b.mask("lung_left")  # noqa: E731
    loss = DiceCELoss(sigmoid=True)

    start = time.perf_counter()
    otsu = np.mean([dice(m, img < threshold_otsu(img)) for img, m in zip(test_set.images[:, 0], lungs(test_set))])
    net = train(unet(), x_train, torch.as_tensor(lungs(train_set)[:, None], dtype=torch.float32), loss, session.device)
    pred = predict(net, x_test, session.device).numpy()[:, 0] > 0.5
    unet_dice = np.mean([dice(m, p) for p, m in zip(pred, lungs(test_set))])
    print(f"lung segmentation   Otsu Dice {otsu:.3f}   U-Net Dice {unet_dice:.3f}   ({time.perf_counter() - start:.0f} s)")

    start = time.perf_counter()
    blob_dets = []
    for img, lung in zip(test_set.images[:, 0], lungs(test_set)):
        blobs = blob_log(img, min_sigma=1.5, max_sigma=5, num_sigma=6, threshold=0.01)
        dets = []
        for r, c, s in blobs:
            if lung[int(r), int(c)]:
                dets.append((r, c, float(-ndi.gaussian_laplace(img, s)[int(r), int(c)])))
        blob_dets.append(dets)
    # nodules are a tiny fraction of the pixels: a focal term keeps the easy background from dominating
    focal = DiceFocalLoss(sigmoid=True, gamma=2.0, lambda_focal=5.0)
    net = train(unet(), x_train, torch.as_tensor(train_set.mask("nodule")[:, None], dtype=torch.float32), focal,
                session.device, steps=3 * STEPS)
    heat = predict(net, x_test, session.device).numpy()[:, 0]
    unet_dets = []
    for h in heat:
        labels, n = ndi.label(h > 0.4)
        centres = ndi.center_of_mass(h, labels, range(1, n + 1))
        scores = ndi.maximum(h, labels, range(1, n + 1))
        unet_dets.append([(r, c, float(s)) for (r, c), s in zip(centres, np.atleast_1d(scores))])
    print(f"nodule detection    blob AP {centre_average_precision(test_set.boxes, blob_dets):.3f}   "
          f"U-Net heat-map AP {centre_average_precision(test_set.boxes, unet_dets):.3f}   ({time.perf_counter() - start:.0f} s)")

    start = time.perf_counter()

    def lung_stats(b):
        m, img = lungs(b), b.images[:, 0]
        return np.stack([[im[mm].mean(), im[mm].std(), np.percentile(im[mm], 90)] for im, mm in zip(img, m)])

    features = LogisticRegression(max_iter=1000).fit(lung_stats(train_set), train_set.labels)
    feature_auc = roc_auc_score(test_set.labels, features.predict_proba(lung_stats(test_set))[:, 1])
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(
        *[layer for c_in, c_out in ((1, 16), (16, 32), (32, 64), (64, 64))
          for layer in (torch.nn.Conv2d(c_in, c_out, 3, padding=1), torch.nn.BatchNorm2d(c_out), torch.nn.ReLU(), torch.nn.MaxPool2d(2))],
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 1))
    bce = lambda out, y: torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], y)  # noqa: E731
    cnn = train(cnn, x_train, torch.as_tensor(train_set.labels, dtype=torch.float32), bce, session.device)
    with torch.no_grad():
        scores = torch.cat([cnn(x_test[i:i + 64].to(session.device)).cpu() for i in range(0, N_TEST, 64)])[:, 0]
    cnn_auc = roc_auc_score(test_set.labels, scores.numpy())
    print(f"pneumonia           lung-statistics AUC {feature_auc:.3f}   CNN AUC {cnn_auc:.3f}   "
          f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
