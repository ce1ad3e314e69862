"""MedLab: helpers for a course on machine learning for medical image analysis.

Importing ``medlab`` does nothing but define its version; import the module you need::

    from medlab.runtime import setup      # seeding, device, profiles
    from medlab.report import record      # a notebook's results for the course report
"""

__version__ = "0.1.0"
