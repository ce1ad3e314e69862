"""The package's conventions (CONTRIBUTING.md), checked over every public function of medlab."""

import ast
import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path

import nbformat
import pytest

import medlab

ROOT = Path(__file__).resolve().parents[1]

OPTIONS = {"spacing", "target_spacing", "tolerance_mm", "iou_threshold", "iou_thresholds", "n_bins", "transform",
           "threshold", "target", "rates", "structures", "effects", "center", "width", "loss_fn", "optimizer", "outputs",
           "num_classes", "overlap"}
"""Units and options: always passed by keyword."""

INTERNAL = ("medlab.phantoms.fields.",)
"""Building blocks of the phantoms, which no lab calls: their widths are part of the geometry."""

TRUTH_FIRST = ("y_true", "truth", "truths")
PREDICTED = ("y_score", "y_pred", "pred", "predictions", "probability", "logits", "boxes", "score_a")


def _modules():
    for info in pkgutil.walk_packages(medlab.__path__, "medlab."):
        yield importlib.import_module(info.name)


def _public_functions():
    for module in _modules():
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj):
                if not dataclasses.is_dataclass(obj):  # a record's fields are its constructor's arguments
                    yield f"{module.__name__}.{name}", obj.__init__
                for method_name, method in vars(obj).items():
                    if isinstance(method, classmethod):
                        yield f"{module.__name__}.{name}.{method_name}", method.__func__


FUNCTIONS = dict(_public_functions())


@pytest.mark.parametrize("name", sorted(n for n in FUNCTIONS if not n.startswith(INTERNAL)))
def test_units_and_options_are_keyword_only(name):
    try:
        parameters = inspect.signature(FUNCTIONS[name]).parameters.values()
    except (TypeError, ValueError):
        pytest.skip("no signature")
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert not set(positional) & OPTIONS, f"{name}: pass {sorted(set(positional) & OPTIONS)} by keyword (after *)"


@pytest.mark.parametrize("name", ["medlab.train.fit", "medlab.train.train_one_epoch", "medlab.train.predict",
                                  "medlab.train.evaluate"])
def test_the_training_functions_take_the_device_by_keyword(name):
    parameters = inspect.signature(FUNCTIONS[name]).parameters
    assert parameters["device"].kind == inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", sorted(n for n in FUNCTIONS if n.startswith("medlab.metrics.")))
def test_metrics_take_the_truth_first(name):
    positional = [p.name for p in inspect.signature(FUNCTIONS[name]).parameters.values()
                  if p.kind == p.POSITIONAL_OR_KEYWORD and p.name != "metric"]
    truth = [i for i, p in enumerate(positional) if p in TRUTH_FIRST]
    predicted = [i for i, p in enumerate(positional) if p in PREDICTED]
    if truth and predicted:
        assert max(truth) < min(predicted), f"{name}{positional}: the truth comes before the predictions"


def _used_in_notebooks():
    """``(module, name)`` for every medlab name a lab imports or reaches as ``module.name``."""
    used = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        tree = ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))
        modules = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("medlab"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if importlib.util.find_spec(target.split(".")[0]) and _is_module(target):
                        modules[alias.asname or alias.name] = target
                    else:
                        used.add((node.module, alias.name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                used.add((modules[node.value.id], node.attr))
    return sorted(used)


def _is_module(dotted):
    try:
        importlib.import_module(dotted)
        return True
    except ImportError:
        return False


@pytest.mark.parametrize("module, name", _used_in_notebooks())
def test_every_helper_a_lab_uses_names_the_lab_that_teaches_it(module, name):
    obj = getattr(importlib.import_module(module), name)
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        pytest.skip("a constant: documented where it is defined")
    assert "Taught in lab" in (obj.__doc__ or ""), f"{module}.{name}: say 'Taught in lab NN, section N (...)'"
