"""Deepfake detection pipeline: frames, faces, models, training and prediction.

Plain Python (never imports Django) so the site, the command line and the benchmarks share it.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
