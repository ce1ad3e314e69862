"""MedLab: helpers for a course on machine learning for medical image analysis.

Importing ``medlab`` does nothing but define its version; import the module you need::

    from medlab.runtime import setup      # seeding, device, profiles
    from medlab.report import record      # a lab's results for the course report

The imaging science the labs teach lives in ``phantoms``, ``dicom``, ``io``, ``windowing``,
``transforms``, ``features``, ``datasets``, ``models``, ``train``, ``metrics``, ``realdata``,
``registry``, ``archives``, ``explain``, ``attacks``, ``corruptions``, ``uncertainty``,
``registration``, ``slides``, ``convert`` and ``distributed`` (with the script ``ddp_train``); the workbook's machinery in ``runtime``, ``profiles``,
``paths``, ``claims``, ``report``, ``exercises``, ``viz``, ``widgets``, ``course``, ``sweep``,
``standard``, ``arguments`` and ``errors``.

Conventions (CONTRIBUTING.md): metrics take the truth first (``dice(truth, pred)``, as
scikit-learn's ``y_true, y_score``); options and units are keyword-only (``spacing=``,
``tolerance_mm=``, ``iou_threshold=``, ``center=``/``width=``, ``device=``); samples are dictionaries with MONAI's ``"image"`` and
``"label"`` keys (detection: torchvision's ``(image, target)``); volumes are ``(z, y, x)`` with
spacing in mm; a helper a lab uses says which lab teaches it.
"""

__version__ = "0.1.0"
