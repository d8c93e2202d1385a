"""benchmarks.clip_finetune: the PyTorch copy of CLIP's last block, the probe carried into it, the token
store."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.clip_finetune import RowsBeside, block_weights, cls_block, fine_tune  # noqa: E402
from ml import clip_encoder  # noqa: E402
from ml.clip_encoder import CLS_DIM, ROW_DIM  # noqa: E402
from ml.features import EmbeddingStore  # noqa: E402
from ml.probe import FEATURE_SLICES, EnsembleProbe, fit_mlp_probe  # noqa: E402


def _random_block(rng) -> dict[str, np.ndarray]:
    d, hidden = CLS_DIM, 4 * CLS_DIM
    shapes = {"q": (d, d), "k": (d, d), "v": (d, d), "out": (d, d), "fc1": (d, hidden), "fc2": (hidden, d)}
    weights = {}
    for name, (fan_in, fan_out) in shapes.items():
        weights[f"{name}.weight"] = rng.normal(0, fan_in**-0.5, (fan_in, fan_out)).astype(np.float32)
        weights[f"{name}.bias"] = rng.normal(0, 0.02, fan_out).astype(np.float32)
    for i in (1, 2):
        weights[f"layer_norm{i}.weight"] = np.ones(d, np.float32)
        weights[f"layer_norm{i}.bias"] = np.zeros(d, np.float32)
    return weights


@pytest.mark.parametrize("members, l2", [(1, True), (2, True), (1, False)])
def test_the_probe_carried_into_the_tuned_model_scores_as_before_training(members, l2):
    """Before any pass, block + head give the fitted probe's logits: the tuned arm starts where the frozen
    probe ends (same standardisation, same weights), so any difference after is the training's."""
    rng = np.random.default_rng(0)
    weights = _random_block(rng)
    tokens = rng.normal(size=(24, 197, CLS_DIM)).astype(np.float16)
    rows = rng.normal(size=(24, ROW_DIM)).astype(np.float32)
    with torch.no_grad():
        rows[:, FEATURE_SLICES["cls"]] = cls_block(weights)(torch.tensor(tokens, dtype=torch.float32)).numpy()
    labels = np.arange(24) % 2
    heads = [
        fit_mlp_probe(rows, labels, "L3+L6+L9+cls", l2, hidden=16, iterations=5, seed=s) for s in range(2)
    ]
    probe = heads[0] if members == 1 else EnsembleProbe(heads)  # an ensemble averages its heads' logits

    untrained = fine_tune(probe, weights, rows, tokens, labels, rates=(1e-3, 1e-5), epochs=0)
    np.testing.assert_allclose(untrained.logits(rows, tokens), probe.logits(rows), atol=1e-4)
    trained = fine_tune(probe, weights, rows, tokens, labels, rates=(0.0, 1e-3), epochs=1)
    assert not np.allclose(trained.logits(rows, tokens), probe.logits(rows), atol=1e-3)


def test_token_store_saves_and_reloads_and_files_the_rows_beside(tmp_path):
    rng = np.random.default_rng(1)
    tokens = rng.normal(size=(3, 197, CLS_DIM)).astype(np.float16)
    encoder = SimpleNamespace(last_rows=rng.normal(size=(3, ROW_DIM)).astype(np.float32))
    rows = EmbeddingStore(tmp_path / "rows.npz")
    rows.add(["a.jpg"], encoder.last_rows[:1])  # already embedded: kept as it is
    store = RowsBeside(tmp_path / "tokens.npz", encoder, rows)
    keys = ["a.jpg", "b.jpg#0", "synth/sbi/0/c.jpg"]
    store.add(keys, tokens)
    store.save()
    again = RowsBeside(tmp_path / "tokens.npz", encoder, EmbeddingStore(tmp_path / "rows.npz"))
    assert len(again) == 3 and "b.jpg#0" in again
    np.testing.assert_array_equal(again.get(["synth/sbi/0/c.jpg", "a.jpg"]), tokens[[2, 0]])
    assert again.get(["a.jpg"]).dtype == np.float16
    np.testing.assert_array_equal(again.row_store.get(keys), encoder.last_rows)


@pytest.mark.skipif(clip_encoder.fp32_status() is not None, reason="the CLIP tower is not built here")
def test_the_pytorch_block_reproduces_the_towers_last_cls_token():
    """Block 12 rebuilt from the dequantised graph's weights maps block 11's tokens to the tower's own
    block-12 CLS token: the tuned arm starts from CLIP, not from a look-alike."""
    from skimage import data

    photo = data.astronaut()[:400, 100:500]
    out = clip_encoder.ClipEncoder(threads=1).run([photo, photo[::-1].copy()])
    block = cls_block(block_weights(clip_encoder.fp32_model_path(), layer=11))
    with torch.no_grad():
        cls = block(torch.tensor(out.blocks[:, 10])).numpy()
    np.testing.assert_allclose(cls, out.blocks[:, 11, 0], atol=1e-4)
