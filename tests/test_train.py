"""The shared training loop: learns, records, stops early, restores the best weights."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader, TensorDataset

from medlab.models import count_parameters, small_cnn
from medlab.train import History, evaluate, fit, load_checkpoint, predict, save_checkpoint

DEVICE = torch.device("cpu")


def data(n=256, seed=0, flip=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = ((x[:, 0] + 0.5 * x[:, 1]) > 0).float()
    return 1 - y if flip else y, x


def loaders(seed=0):
    y, x = data(seed=seed)
    yv, xv = data(seed=seed + 1)
    return (DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)),
            DataLoader(TensorDataset(xv, yv), batch_size=64))


def bce(out, y):
    return torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], y)


def test_fit_learns_and_records_history():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    train, val = loaders()
    history = fit(model, train, val, loss_fn=bce, optimizer=torch.optim.Adam(model.parameters(), 0.05),
                  device=DEVICE, epochs=8, metric=roc_auc_score, progress=False)
    assert len(history.train_loss) == len(history.val_loss) == len(history.val_metric) == 8
    assert history.train_loss[-1] < history.train_loss[0] * 0.7
    assert history.best > 0.95
    loss, auc = evaluate(model, val, loss_fn=bce, device=DEVICE, metric=roc_auc_score)
    assert auc == pytest.approx(history.best)  # the best epoch's weights were restored


def test_a_device_may_be_named_by_a_string():
    results = []
    for device in ("cpu", DEVICE):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        train, val = loaders()
        fit(model, train, val, loss_fn=bce, optimizer=torch.optim.SGD(model.parameters(), 0.1), device=device,
            epochs=2, progress=False)
        results.append((predict(model, val, device=device)[0], evaluate(model, val, loss_fn=bce, device=device)[0]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_early_stopping_and_restoring_the_best_epoch():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    train, val = loaders()
    # validation labels flipped: training makes validation worse, so epoch 0 stays best
    yv, xv = data(seed=1, flip=True)
    flipped = DataLoader(TensorDataset(xv, yv), batch_size=64)
    history = fit(model, train, flipped, loss_fn=bce, optimizer=torch.optim.SGD(model.parameters(), 0.5),
                  device=DEVICE, epochs=20, patience=3, progress=False)
    assert history.stopped_early and len(history.val_loss) == 4 and history.best_epoch == 0
    assert evaluate(model, flipped, loss_fn=bce, device=DEVICE)[0] == pytest.approx(history.val_loss[0])


def test_dictionary_batches_and_predict():
    y, x = data(n=64)
    batches = [{"image": x[i:i + 16], "label": y[i:i + 16]} for i in range(0, 64, 16)]
    model = torch.nn.Linear(4, 1)
    history = fit(model, batches, batches, loss_fn=bce, optimizer=torch.optim.SGD(model.parameters(), 0.1),
                  device=DEVICE, epochs=2, progress=False)
    scores, targets = predict(model, batches, device=DEVICE)
    assert scores.shape == (64,) and np.array_equal(targets, y.numpy()) and isinstance(history, History)
    with pytest.raises(KeyError, match="not 'mask'"):
        predict(model, [{"image": b["image"], "mask": b["label"]} for b in batches], device=DEVICE)
    with pytest.raises(KeyError, match="'label'"):
        predict(model, [{"image": x, "target": y}], device=DEVICE)


def test_regularizer_is_added_to_the_objective():
    train, val = loaders()
    weights = {}
    for name, reg in (("plain", None), ("l1", lambda m: 1.0 * m.weight.abs().sum())):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        fit(model, train, val, loss_fn=bce, optimizer=torch.optim.SGD(model.parameters(), 0.1), device=DEVICE,
            epochs=5, regularizer=reg, progress=False, restore_best=False)
        weights[name] = model.weight.abs().sum().item()
    assert weights["l1"] < 0.5 * weights["plain"]


def test_diverging_training_is_reported():
    train, val = loaders()
    model = torch.nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(model, train, val, loss_fn=bce, optimizer=torch.optim.SGD(model.parameters(), 0.1), device=DEVICE,
            epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        fit(model, train, val, loss_fn=bce, optimizer=torch.optim.SGD(model.parameters(), 0.1), device=DEVICE, epochs=0)


def test_checkpoints_round_trip_atomically(tmp_path):
    model = small_cnn(widths=(4, 8))
    path = save_checkpoint(model, tmp_path / "sub" / "best.pt", epoch=3, auc=0.91)
    other = small_cnn(widths=(4, 8))
    extra = load_checkpoint(other, path)
    assert extra == {"epoch": 3, "auc": 0.91}
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(other, tmp_path / "missing.pt")


def test_small_cnn_shapes_and_options():
    net = small_cnn(widths=(8, 16, 32), dropout=0.5, outputs=3)
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
    assert any(isinstance(m, torch.nn.Dropout) for m in net)
    plain = small_cnn(widths=(8,), batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert count_parameters(plain) == 8 * 9 + 8 + 8 + 1
    with pytest.raises(ValueError, match="at least one"):
        small_cnn(widths=())


def test_channels_last_is_only_used_for_2d_models():
    from medlab.train import channels_last_applies

    assert channels_last_applies(torch.nn.Conv2d(1, 2, 3))
    assert not channels_last_applies(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Conv3d(2, 2, 3)))
    with pytest.raises(RuntimeError):  # why: PyTorch refuses channels_last on 5D weights
        torch.nn.Conv3d(1, 2, 3).to(memory_format=torch.channels_last)


def test_code_fingerprint_changes_with_the_code(tmp_path, monkeypatch):
    import importlib
    import sys

    from medlab.train import code_fingerprint

    module = tmp_path / "recipe_v.py"
    module.write_text("def train():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = code_fingerprint(importlib.import_module("recipe_v").train)
    assert first == code_fingerprint(importlib.import_module("recipe_v").train) and len(first) == 16
    module.write_text("def train():\n    return 2\n")
    del sys.modules["recipe_v"]
    assert code_fingerprint(importlib.import_module("recipe_v").train) != first
    with pytest.raises(ValueError, match="cannot read the source code"):
        code_fingerprint(len)
    with pytest.raises(ValueError, match="at least one"):
        code_fingerprint()


def test_a_nan_loss_stops_training_before_the_step_that_would_spoil_the_weights():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    y, x = data(n=64)
    x[10, 0] = float("nan")  # the first batch holds a NaN input
    train = DataLoader(TensorDataset(x, y), batch_size=32)
    with pytest.raises(FloatingPointError, match="the training loss is nan.*weights are those before this step"):
        fit(model, train, loaders()[1], loss_fn=bce, optimizer=torch.optim.SGD(model.parameters(), 0.1),
            device=DEVICE, epochs=2, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_undefined_validation_metric_is_an_error_not_a_silent_last_epoch():
    model = torch.nn.Linear(4, 1)
    train, val = loaders()
    with pytest.raises(FloatingPointError, match="validation metric after epoch 1 is nan.*undefined"):
        fit(model, train, val, loss_fn=bce, optimizer=torch.optim.SGD(model.parameters(), 0.1), device=DEVICE,
            epochs=3, metric=lambda y, s: float("nan"), progress=False)


def test_history_best_before_any_epoch_is_an_error():
    with pytest.raises(ValueError, match="no epoch has been scored yet"):
        History().best


@pytest.mark.parametrize("batch, message", [
    ((torch.zeros(2, 4), torch.zeros(2), torch.zeros(2)), "a tuple of 3 items"),
    (torch.zeros(2, 4), "got a Tensor"),
])
def test_batches_of_the_wrong_form_are_named(batch, message):
    model = torch.nn.Linear(4, 1)
    with pytest.raises(ValueError, match=message):
        evaluate(model, [batch], loss_fn=bce, device=DEVICE)


def test_a_checkpoint_of_another_architecture_names_the_file(tmp_path):
    path = save_checkpoint(torch.nn.Linear(4, 1), tmp_path / "linear.pt")
    with pytest.raises(ValueError, match=r"linear\.pt do not fit this Linear .*another architecture"):
        load_checkpoint(torch.nn.Linear(5, 1), path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04garbage" * 10])
def test_a_damaged_checkpoint_names_the_file(tmp_path, content):
    path = tmp_path / "damaged.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"damaged\.pt is not a readable checkpoint"):
        load_checkpoint(torch.nn.Linear(4, 1), path)


def test_a_file_saved_without_save_checkpoint_is_named(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(torch.nn.Linear(4, 1).state_dict(), path)
    with pytest.raises(ValueError, match=r"plain\.pt was not written by save_checkpoint"):
        load_checkpoint(torch.nn.Linear(4, 1), path)


def test_augment_sees_every_training_batch_and_never_the_validation_batches():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    train, val = loaders()
    seen = []

    def augment(inputs):
        seen.append(len(inputs))
        return inputs + 0.01 * torch.randn_like(inputs)

    fit(model, train, val, loss_fn=bce, optimizer=torch.optim.Adam(model.parameters(), 0.05), device=DEVICE,
        epochs=2, augment=augment, progress=False)
    assert sum(seen) == 2 * 256  # every training image, in each of the two epochs; no validation image


def test_one_cycle_steps_every_batch_with_scheduler_interval_batch():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    train, val = loaders()
    optimizer = torch.optim.AdamW(model.parameters(), 0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=6 * len(train))
    history = fit(model, train, val, loss_fn=bce, optimizer=optimizer, device=DEVICE, epochs=6, scheduler=schedule,
                  scheduler_interval="batch", metric=roc_auc_score, progress=False)
    assert schedule.last_epoch == 6 * len(train)  # stepped after each of the 6 x 8 batches, to the cycle's end
    assert optimizer.param_groups[0]["lr"] < 0.05 / 100 and history.best > 0.95  # annealed to near zero
    with pytest.raises(ValueError, match="scheduler_interval must be 'epoch' or 'batch'"):
        fit(model, train, val, loss_fn=bce, optimizer=optimizer, device=DEVICE, epochs=1, scheduler=schedule,
            scheduler_interval="step", progress=False)


def test_autocast_dtype_is_float16_on_cuda_and_bfloat16_elsewhere():
    from medlab.train import autocast_dtype

    assert autocast_dtype(torch.device("cuda")) == torch.float16
    assert autocast_dtype(torch.device("cpu")) == torch.bfloat16


def test_amp_on_the_cpu_computes_in_bfloat16_and_keeps_float32_weights():
    from medlab.train import _autocast

    layer = torch.nn.Linear(4, 2)
    with _autocast(torch.device("cpu"), True):
        assert layer(torch.randn(3, 4)).dtype == torch.bfloat16
    with _autocast(torch.device("cpu"), False):
        assert layer(torch.randn(3, 4)).dtype == torch.float32
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64, 1)).float()
    loader = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    model = torch.nn.Linear(4, 1)
    history = fit(model, loader, loader, loss_fn=torch.nn.BCEWithLogitsLoss(), device=torch.device("cpu"), epochs=2,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), amp=True, progress=False)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert np.isfinite(history.train_loss).all()
    scores, _ = predict(model, loader, device=torch.device("cpu"), amp=True)
    float32_scores, _ = predict(model, loader, device=torch.device("cpu"), amp=False)
    np.testing.assert_allclose(scores, float32_scores, atol=0.05)  # bfloat16 keeps 2-3 significant digits
