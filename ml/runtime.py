"""How the project runs ONNX models on the CPU: one place for ONNX Runtime's session settings."""

from __future__ import annotations

import os
from pathlib import Path

THREADS_ENV = "DETECTOR_THREADS"


def configured_threads() -> int | None:
    """Threads per model call from $DETECTOR_THREADS; None (unset) leaves the libraries' one per core.

    Several worker processes on one machine each default to one thread per core, so N workers run N
    threads a core that wait on each other; cores / workers each is what the load benchmark sets.
    """
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV} must be a whole number of threads, at least 1, not {value!r}")
    return int(value)


def onnx_cpu_session(model: str | Path | bytes, threads: int | None = None):
    """An ONNX Runtime CPU session for a model file or serialized model.

    Thread spinning is off: by default ONNX Runtime's idle pool threads busy-wait for the next call,
    which starves whatever else runs meanwhile (the frame-decoding thread, the other model's session).
    On the 720p benchmark clip (2 cores) a video took 0.74 s with spinning and 0.52 s without.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    threads = threads or configured_threads()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
