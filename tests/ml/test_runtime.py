"""ml.runtime: how many threads a model call may use."""

from __future__ import annotations

import pytest

from ml.runtime import THREADS_ENV, configured_threads


def test_threads_come_from_the_environment_and_refuse_nonsense(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert configured_threads() is None  # the libraries' own default: one per core
    monkeypatch.setenv(THREADS_ENV, "1")
    assert configured_threads() == 1
    for wrong in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv(THREADS_ENV, wrong)
        with pytest.raises(ValueError, match=THREADS_ENV):
            configured_threads()


def test_an_onnx_session_takes_the_configured_threads(monkeypatch):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from ml.runtime import onnx_cpu_session

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]).SerializeToString()
    monkeypatch.setenv(THREADS_ENV, "1")
    session = onnx_cpu_session(model)
    assert session.get_session_options().intra_op_num_threads == 1
    monkeypatch.delenv(THREADS_ENV)
    assert onnx_cpu_session(model).get_session_options().intra_op_num_threads == 0  # ORT's default
    assert onnx is not None
