"""The image model's feature extractor run by ONNX Runtime: the CPU path of the CNN stage.

On two CPU cores ONNX Runtime embeds MobileNetV2 face crops faster than eager PyTorch (see
benchmarks/levers.py --only cnn), with the same features to float rounding. The model is exported from
the loaded PyTorch weights in memory when a worker starts (a second or two, once per process), so the
registry keeps one checkpoint format and nothing is written to disk. Grad-CAM and training stay in PyTorch.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import torch

from ml.runtime import onnx_cpu_session

log = logging.getLogger(__name__)


class EmbedModule(torch.nn.Module):
    """`model.embed` as a module's forward, for exporters and compilers."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.embed(x)


class OnnxEmbedder:
    """`model.embed` as an ONNX Runtime session on the CPU."""

    def __init__(self, model: torch.nn.Module, input_size: int, threads: int | None = None):
        buffer = io.BytesIO()
        example = torch.zeros(1, 3, input_size, input_size)
        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings():
                # deprecated in torch 2.14; should a later torch drop it, make_onnx_embedder falls back
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(
                    EmbedModule(model),
                    example,
                    buffer,
                    input_names=["x"],
                    output_names=["embedding"],
                    dynamic_axes={"x": {0: "n"}, "embedding": {0: "n"}},
                    dynamo=False,  # the TorchScript exporter needs only the `onnx` package, not onnxscript
                )
        finally:
            model.train(was_training)
        self._session = onnx_cpu_session(buffer.getvalue(), threads or torch.get_num_threads())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self._session.run(None, {"x": array})[0])


def make_onnx_embedder(model: torch.nn.Module, input_size: int) -> OnnxEmbedder | None:
    """An OnnxEmbedder, or None (eager PyTorch is used) when ONNX export or Runtime is unavailable."""
    try:
        return OnnxEmbedder(model, input_size)
    except Exception as exc:  # noqa: BLE001 - any failure means "use PyTorch", which is always correct
        log.warning("ONNX Runtime embedder unavailable, using PyTorch: %s", str(exc).splitlines()[0][:200])
        return None
