"""Detection metrics: matching rules by hand, AP against pycocotools (the reference COCO
evaluation) on random detections, FROC by hand, and the edge cases."""

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from medlab.metrics import average_precision, average_precision_range, froc, match_detections, precision_recall


def box(x, y, w, h):
    return [x, y, x + w, y + h]


def test_greedy_matching_by_score_and_duplicates_are_false_positives():
    truth = [box(10, 10, 10, 10)]
    boxes = [box(11, 10, 10, 10), box(10, 10, 10, 10), box(50, 50, 5, 5)]
    hits = match_detections(truth, boxes, [0.5, 0.9, 0.8])
    assert hits.tolist() == [False, True, False]  # the highest score takes the box; the other is a duplicate
    assert match_detections(truth, boxes, [0.9, 0.5, 0.8]).tolist() == [True, False, False]
    assert match_detections(truth, [], []).tolist() == []
    assert match_detections([], boxes, [1, 1, 1]).tolist() == [False] * 3


def test_iou_threshold_decides_a_hit():
    truth = [box(0, 0, 10, 10)]
    half = [box(5, 0, 10, 10)]  # IoU = 50 / 150 = 1/3
    assert match_detections(truth, half, [1.0], iou_threshold=0.3).tolist() == [True]
    assert match_detections(truth, half, [1.0], iou_threshold=0.5).tolist() == [False]


def random_case(rng, n_images=12):
    predictions, truths = [], []
    for _ in range(n_images):
        m = rng.integers(0, 4)
        xy = rng.uniform(0, 100, (m, 2))
        wh = rng.uniform(4, 12, (m, 2))
        truth = np.concatenate([xy, xy + wh], 1)
        jitter = truth + rng.normal(0, 1.5, truth.shape)
        extra = rng.uniform(0, 100, (rng.integers(0, 4), 2))
        extra = np.concatenate([extra, extra + rng.uniform(4, 12, extra.shape)], 1)
        boxes = np.concatenate([jitter[rng.random(m) < 0.8], extra])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        predictions.append((boxes, rng.random(len(boxes))))
        truths.append(truth)
    return predictions, truths


def coco_average_precision(predictions, truths, iou_thresholds):
    """pycocotools' AP (all areas, 100 detections per image) for one class."""
    xywh = lambda b: [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]  # noqa: E731
    annotations = [{"id": k + 1, "image_id": i, "category_id": 1, "bbox": xywh(b), "iscrowd": 0,
                    "area": float((b[2] - b[0]) * (b[3] - b[1]))}
                   for k, (i, b) in enumerate((i, b) for i, t in enumerate(truths) for b in t)]
    truth = COCO()
    truth.dataset = {"images": [{"id": i} for i in range(len(truths))], "annotations": annotations, "categories": [{"id": 1}]}
    truth.createIndex()
    detections = truth.loadRes([{"image_id": i, "category_id": 1, "bbox": xywh(b), "score": float(s)}
                                for i, (boxes, scores) in enumerate(predictions) for b, s in zip(boxes, scores)])
    evaluation = COCOeval(truth, detections, "bbox")
    evaluation.params.iouThrs = np.array(iou_thresholds)
    evaluation.evaluate()
    evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, 0, 0, -1]  # (IoU thresholds, recall points); area "all", 100 dets
    return float(np.mean(precision[precision > -1]))


@pytest.mark.parametrize("seed", range(6))
def test_average_precision_matches_pycocotools(seed, capsys):
    predictions, truths = random_case(np.random.default_rng(seed))
    assert average_precision(truths, predictions, iou_threshold=0.5) == pytest.approx(coco_average_precision(predictions, truths, [0.5]), abs=1e-9)
    assert average_precision(truths, predictions, iou_threshold=0.75) == pytest.approx(coco_average_precision(predictions, truths, [0.75]), abs=1e-9)
    thresholds = np.round(np.arange(0.5, 0.96, 0.05), 2)
    assert average_precision_range(truths, predictions) == pytest.approx(coco_average_precision(predictions, truths, thresholds), abs=1e-9)


def test_precision_recall_and_froc_by_hand():
    truths = [[box(0, 0, 10, 10)], [box(0, 0, 10, 10)]]
    predictions = [([box(0, 0, 10, 10), box(50, 50, 10, 10)], [0.9, 0.8]),
                   ([box(30, 30, 10, 10), box(0, 0, 10, 10)], [0.7, 0.6])]
    precision, recall, scores = precision_recall(truths, predictions)
    assert scores.tolist() == [0.9, 0.8, 0.7, 0.6]
    np.testing.assert_allclose(precision, [1, 1 / 2, 1 / 3, 2 / 4])
    np.testing.assert_allclose(recall, [0.5, 0.5, 0.5, 1.0])
    # false positives per image after each detection: 0, 0.5, 1, 1
    np.testing.assert_allclose(froc(truths, predictions, rates=(0.25, 0.5, 1.0)), [0.5, 0.5, 1.0])
    assert average_precision(truths, [([], []), ([], [])]) == 0.0


def test_bad_inputs_get_clear_errors():
    truths = [[box(0, 0, 10, 10)]]
    with pytest.raises(ValueError, match="max >= min"):
        match_detections(truths[0], [[10, 10, 0, 0]], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        match_detections(truths[0], [box(0, 0, 1, 1)], [float("nan")])
    with pytest.raises(ValueError, match="scores"):
        match_detections(truths[0], [box(0, 0, 1, 1)], [1.0, 2.0])
    with pytest.raises(ValueError, match="no true boxes"):
        average_precision([[]], [([box(0, 0, 1, 1)], [1.0])])
    with pytest.raises(ValueError, match="2 images with truth but 1 with predictions"):
        froc(truths * 2, [([], [])])
    with pytest.raises(ValueError, match="the truth comes first"):
        average_precision([([box(0, 0, 10, 10)], [0.9])], truths)


def test_options_are_keywords():
    truths = [[box(0, 0, 10, 10)]]
    predictions = [([box(0, 0, 10, 10)], [0.9])]
    with pytest.raises(TypeError):
        average_precision(truths, predictions, 0.5)
    with pytest.raises(TypeError):
        match_detections(truths[0], *predictions[0], 0.5)
    assert average_precision_range(truths, predictions, iou_thresholds=(0.5,)) == 1.0
