"""Fine-tuning CLIP's last block against probing it frozen, by the leave-one-source-out rows.

    python -m benchmarks.clip_finetune --head-lr 0 --block-lr 1e-5     # ~30 min on 2 cores, tokens cached
    python -m benchmarks.clip_finetune --rows in_domain_photos stylegan_rof --epochs 3

Issue 10 asks to compare fine-tuning with frozen heads. Fine-tuning the whole ViT-B/16 needs a GPU; on two
CPU cores this measures the step that is affordable: the last transformer block trained, everything before
it frozen. The probe reads the CLS tokens of blocks 3, 6, 9 and 12 (the shipped feature); blocks 3, 6 and
9 stay as they are, block 12's CLS is recomputed from block 11's tokens by a PyTorch copy of that block (its
weights read from the dequantised ONNX graph; it reproduces the tower's token to 1e-6), and only that
block's CLS path is run: the probe never reads block 12's patch tokens, so their queries, attention rows
and MLP are dead work (about a sixth of the block's cost remains, ~20 ms per face forward and backward).

Per row (`ml.loso`'s photo and video rows, each held out as `benchmarks.loso` does, and the test splits
in-domain): the shipped recipe's head (`ml.probe.fit_head`; one, seed 0, or `--members 5` as shipped) is
fitted on the frozen features of the training faces less the row's sources, then, as in LP-FT (Kumar et al.,
2022: fit the head first so that fine-tuning does not start from a random head), the head and the block are
trained further at `--head-lr` / `--block-lr` for `--epochs` passes. Three arms: the probe as fitted; the
same passes with the block frozen; the same passes with the block trained. With `--head-lr 0` the head stays
as fitted and only the block moves, so a difference from the probe is the block's. A clip scores the mean
logit of its frames, as the product scores a track.

Block 11's tokens (197 x 768 per face, float16, ~300 kB) are embedded once into `cache/features/` beside
the feature store (~25 min on 2 cores for the ~5,500 faces; the shipped feature rows are filled in the
same pass). A measurement only: the product's probe reads the frozen tower. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.loso import clip_features
from ml.clip_encoder import ClipEncoder, fp32_model_path
from ml.features import EmbeddingStore, clip_stores
from ml.loso import IMAGE_ROWS, VIDEO_ROWS, auc_or_nan, split_row
from ml.probe import EnsembleProbe, MlpProbe, Probe, feature_parts, fit_head, select
from ml.registry import load_clip_probe
from ml.sources import read_manifest, source_groups
from ml.train_clip import ClipTrainConfig, Features, gather, source_name

TUNED_BLOCK = 12  # the block trained; its input is block 11's tokens
BATCH = 32
ALPHA = 1.0  # the probe's L2 penalty (ml.probe.fit_mlp_probe), kept while fine-tuning
PENALTY_BATCH = 200  # scikit-learn's MLP divides its penalty by its batch (200): the same strength here


class TokenEncoder:
    """Crops -> block `block - 1`'s tokens, keeping the same crops' shipped feature rows as `last_rows`
    for `RowsBeside` to file (one run of the tower gives both)."""

    def __init__(self, block: int):
        self.encoder = ClipEncoder()
        self.block = block
        self.last_rows: np.ndarray | None = None

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        out = self.encoder.run(crops)
        self.last_rows = out.rows()
        return out.blocks[:, self.block - 2].astype(np.float16)


class RowsBeside(EmbeddingStore):
    """key -> one block's tokens [197, 768] in float16, saved only when a fill ends (a save is ~2 GB); it
    also files the encoder's feature rows of each batch into the matching row store."""

    def __init__(self, path: Path, encoder: TokenEncoder, row_store: EmbeddingStore):
        super().__init__(path, flush_every=sys.maxsize, dtype=np.float16)
        self.encoder = encoder
        self.row_store = row_store

    def add(self, keys: Sequence[str], tokens: np.ndarray) -> None:
        super().add(keys, tokens)
        fresh = [i for i, k in enumerate(keys) if k not in self.row_store]
        if fresh and self.encoder.last_rows is not None:
            self.row_store.add([keys[i] for i in fresh], self.encoder.last_rows[fresh])

    def save(self) -> None:
        super().save()
        self.row_store.save()


def gather_tokens(data: Path, cache: Path, cfg: ClipTrainConfig) -> dict[str, Features]:
    """`gather`'s splits with block 11's tokens as `x` (what is missing is embedded first)."""
    row_stores = clip_stores(cache, cfg.seed)
    encoder = TokenEncoder(TUNED_BLOCK)
    folder = cache.parent / "features"
    stores = (
        RowsBeside(folder / f"clip_block{TUNED_BLOCK - 1}_tokens.npz", encoder, row_stores[0]),
        RowsBeside(
            folder / f"clip_block{TUNED_BLOCK - 1}_tokens_synth_s{cfg.seed}.npz", encoder, row_stores[1]
        ),
    )
    return gather(data, cache, stores, encoder, cfg, print, ("train", "val", "test"))


def block_weights(model_path: Path, layer: int) -> dict[str, np.ndarray]:
    """Transformer block `layer` (0-based, HF's numbering) of the dequantised graph, as PyTorch-layout arrays:
    ln1/ln2 (weight, bias), q/k/v/out/fc1/fc2 (weight [in, out], bias)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_path)).graph
    inits = {i.name: i for i in graph.initializer}
    prefix = f"vision_model.encoder.layers.{layer}."
    node_prefix = f"/vision_model/encoder/layers.{layer}/"
    out = {}
    for ln in ("layer_norm1", "layer_norm2"):
        for part in ("weight", "bias"):
            out[f"{ln}.{part}"] = numpy_helper.to_array(inits[f"{prefix}{ln}.{part}"])
    linears = {"q": "self_attn/q_proj", "k": "self_attn/k_proj", "v": "self_attn/v_proj",
               "out": "self_attn/out_proj", "fc1": "mlp/fc1", "fc2": "mlp/fc2"}  # fmt: skip
    matmul = {n.name: n for n in graph.node if n.op_type == "MatMul"}
    for name, path in linears.items():
        node = matmul[f"{node_prefix}{path}/MatMul_quant_fp32"]
        out[f"{name}.weight"] = numpy_helper.to_array(inits[node.input[1]])
        out[f"{name}.bias"] = numpy_helper.to_array(inits[f"{prefix}{path.replace('/', '.')}.bias"])
    return out


def cls_block(weights: dict[str, np.ndarray]):
    """A PyTorch module: block tokens [B, 197, 768] -> the next block's CLS token [B, 768], running only
    what that CLS depends on (every token's keys and values, the CLS query, the CLS row's MLP)."""
    import torch
    from torch import nn

    class ClsBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(768, eps=1e-5)
            self.ln2 = nn.LayerNorm(768, eps=1e-5)
            self.lin = nn.ModuleDict({n: nn.Linear(*weights[f"{n}.weight"].shape) for n in
                                      ("q", "k", "v", "out", "fc1", "fc2")})  # fmt: skip
            with torch.no_grad():
                for i, ln in ((1, self.ln1), (2, self.ln2)):
                    ln.weight.copy_(torch.tensor(weights[f"layer_norm{i}.weight"]))
                    ln.bias.copy_(torch.tensor(weights[f"layer_norm{i}.bias"]))
                for n, lin in self.lin.items():
                    lin.weight.copy_(torch.tensor(weights[f"{n}.weight"]).T)
                    lin.bias.copy_(torch.tensor(weights[f"{n}.bias"]))

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            b, n, d = tokens.shape
            a = self.ln1(tokens)
            q = self.lin["q"](a[:, 0]).view(b, 12, 1, 64)
            k = self.lin["k"](a).view(b, n, 12, 64).transpose(1, 2)
            v = self.lin["v"](a).view(b, n, 12, 64).transpose(1, 2)
            attended = torch.nn.functional.scaled_dot_product_attention(q, k, v).reshape(b, d)
            cls = tokens[:, 0] + self.lin["out"](attended)
            h = self.lin["fc1"](self.ln2(cls))
            return cls + self.lin["fc2"](h * torch.sigmoid(1.702 * h))  # CLIP's quick GELU

    return ClsBlock()


def head_module(probe: Probe):
    """The fitted probe's heads (one, or an ensemble's members) as a PyTorch module on the standardised
    input, their logits averaged as `ml.probe.EnsembleProbe` averages them."""
    import torch
    from torch import nn

    class MeanOfHeads(nn.Module):
        def __init__(self, heads: list[nn.Module]):
            super().__init__()
            self.heads = nn.ModuleList(heads)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([h(x) for h in self.heads]).mean(dim=0)

    heads = []
    for m in probe_members(probe):
        head = nn.Sequential(nn.Linear(*m.hidden_weight.shape), nn.ReLU(), nn.Linear(len(m.out_weight), 1))
        with torch.no_grad():
            head[0].weight.copy_(torch.from_numpy(m.hidden_weight.T.astype(np.float32)))
            head[0].bias.copy_(torch.from_numpy(m.hidden_bias.astype(np.float32)))
            head[2].weight.copy_(torch.from_numpy(m.out_weight[None].astype(np.float32)))
            head[2].bias.fill_(m.out_bias)
        heads.append(head)
    return MeanOfHeads(heads)


def probe_members(probe: Probe) -> list[MlpProbe]:
    """The MLP heads of a probe; every member of an ensemble was standardised on the same rows."""
    members = probe.members if isinstance(probe, EnsembleProbe) else [probe]
    if not all(isinstance(m, MlpProbe) for m in members):
        raise ValueError("only MLP heads are carried into the fine-tuned model")
    return members


@dataclass
class Tuned:
    """The last block and the head: the probe's input with block 12's CLS recomputed by `block`, read as
    the probe reads it (its parts, L2 normalisation and standardisation)."""

    block: Any
    head: Any
    probe: MlpProbe  # the (first) fitted head: its feature, l2, mean and scale

    def logits(self, rows: np.ndarray, tokens: np.ndarray, batch: int = 64) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for s in range(0, len(rows), batch):
                out.append(self._forward(rows[s : s + batch], tokens[s : s + batch]).numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def _forward(self, rows: np.ndarray, tokens: np.ndarray):
        import torch

        cls = self.block(torch.from_numpy(np.asarray(tokens, np.float32)))
        parts = []
        for part in feature_parts(self.probe.feature):
            if part != "cls":
                parts.append(torch.from_numpy(select(rows, part, self.probe.l2).astype(np.float32)))
            else:
                parts.append(cls / cls.norm(dim=1, keepdim=True).clamp_min(1e-12) if self.probe.l2 else cls)
        mean, scale = (torch.from_numpy(a.astype(np.float32)) for a in (self.probe.mean, self.probe.scale))
        return self.head((torch.cat(parts, dim=1) - mean) / scale)[:, 0]


def fine_tune(
    probe: Probe,
    weights: dict,
    rows,
    tokens,
    labels,
    rates: tuple[float, float],
    epochs: int,
    seed: int = 0,
) -> Tuned:
    """LP-FT (linear probe, then fine-tune): start from the fitted probe and train the head and the last
    block at `rates` (Adam learning rates; 0 keeps that part frozen) for `epochs` passes, with the probe's
    L2 penalty on the head."""
    import torch

    torch.manual_seed(seed)
    model = Tuned(cls_block(weights), head_module(probe), probe_members(probe)[0])
    groups = []
    for part, lr in zip((model.head, model.block), rates, strict=True):
        part.requires_grad_(lr > 0)
        if lr > 0:
            groups.append({"params": part.parameters(), "lr": lr})
    if not groups:
        return model
    optimiser = torch.optim.Adam(groups)
    y = torch.from_numpy(labels.astype(np.float32))
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(labels))
        total = 0.0
        for s in range(0, len(order), BATCH):
            idx = np.sort(order[s : s + BATCH])
            logits = model._forward(rows[idx], tokens[idx])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx])
            penalty = sum((p**2).sum() for n, p in model.head.named_parameters() if n.endswith("weight"))
            loss = loss + 0.5 * ALPHA * penalty / PENALTY_BATCH
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        print(f"    epoch {epoch}: loss {total / len(labels):.4f}", flush=True)
    return model


PARTS = ("train_photos", "train_frames", "train_synth")


@dataclass
class Faces:
    """Feature rows and block-11 tokens of the same faces, one row each, with labels and keys."""

    rows: np.ndarray
    tokens: np.ndarray
    labels: np.ndarray
    keys: list[str]

    @classmethod
    def join(cls, rows: dict[str, Features], tokens: dict[str, Features], parts: Sequence[str]) -> Faces:
        for part in parts:
            if rows[part].keys != tokens[part].keys:
                raise RuntimeError(f"{part}: the feature store and the token store disagree on the faces")
        return cls(
            np.concatenate([rows[p].x for p in parts]),
            np.concatenate([tokens[p].x for p in parts]),
            np.concatenate([rows[p].y for p in parts]),
            [k for p in parts for k in rows[p].keys],
        )

    def subset(self, mask: np.ndarray) -> Faces:
        return Faces(self.rows[mask], self.tokens[mask], self.labels[mask], list(np.asarray(self.keys)[mask]))


def file_auc(faces: Faces, logits: np.ndarray) -> float:
    """AUC over media files: a photo's one logit, a clip's mean frame logit (as the product scores
    a track)."""
    by_file: dict[str, list[int]] = {}
    for i, key in enumerate(faces.keys):
        by_file.setdefault(source_name(key), []).append(i)
    scores = np.array([logits[idx].mean() for idx in by_file.values()])
    labels = np.array([faces.labels[idx[0]] for idx in by_file.values()])
    return auc_or_nan(labels, scores)


def arms(train: Faces, evaluate: Faces, cfg: ClipTrainConfig, weights: dict, args) -> dict[str, float]:
    """Held-out AUC of the frozen probe, of that probe trained `epochs` more with the block frozen, and of
    the block fine-tuned with it."""
    probe = fit_head(train.rows, train.labels, replace(cfg, members=args.members))
    out = {"probe": file_auc(evaluate, probe.logits(evaluate.rows))}
    for name, block_lr in (("head_more", 0.0), ("block_tuned", args.block_lr)):
        start = time.perf_counter()
        rates = (args.head_lr, block_lr)
        model = fine_tune(probe, weights, train.rows, train.tokens, train.labels, rates, args.epochs)
        out[name] = file_auc(evaluate, model.logits(evaluate.rows, evaluate.tokens))
        print(f"    {name}: {out[name]:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return out


IN_DOMAIN = {"in_domain_photos": "images", "in_domain_clips": "videos"}
ROWS = {**{r: "images" for r in IMAGE_ROWS}, **{r: "videos" for r in VIDEO_ROWS}}


def row_sets(row: str, train: Faces, media: Faces, records, group_of: dict[str, str]) -> tuple[Faces, Faces]:
    """(training faces without the row's held-out sources, the faces of the row's evaluation files); an
    in-domain row holds nothing out and is evaluated on its kind's test split."""
    kind = IN_DOMAIN.get(row) or ROWS[row]
    held = () if row in IN_DOMAIN else {**IMAGE_ROWS, **VIDEO_ROWS}[row]
    keep = np.array([group_of.get(source_name(k)) not in held for k in train.keys], bool)
    if held:
        _, evaluation = split_row(records[kind], held)
    else:
        evaluation = [r for r in records[kind] if r.split == "test"]
    names = {r.path.name for r in evaluation}
    wanted = np.array([source_name(k) in names for k in media.keys], bool)
    return train.subset(keep), media.subset(wanted)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--cache", type=Path, default=Path("cache/crops"))
    p.add_argument("--embed-only", action="store_true", help="embed the tokens and stop")
    rows = [*IN_DOMAIN, *ROWS]
    p.add_argument("--rows", nargs="*", default=rows, choices=rows, metavar="ROW", help=" ".join(rows))
    p.add_argument("--epochs", type=int, default=2, help="passes after the probe's fit")
    p.add_argument("--block-lr", type=float, default=1e-5)
    p.add_argument("--members", type=int, default=1, help="heads averaged (the shipped probe: 5)")
    p.add_argument("--head-lr", type=float, default=1e-3, help="the probe's own Adam rate; 0: head frozen")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.data.is_dir():
        print(f"error: {args.data} not found (the research media is not part of the repository)")
        return 2
    if not fp32_model_path().is_file():
        raise SystemExit("the CLIP tower is not built: python -m ml prepare")
    _, card, _ = load_clip_probe(None, None)
    cfg = ClipTrainConfig.of_card(card)  # the shipped probe's recipe: its rows, frames and forgeries
    start = time.perf_counter()
    tokens = gather_tokens(args.data, args.cache, cfg)
    faces = sum(len(f.keys) for f in tokens.values())
    print(f"# tokens of {faces} faces in {time.perf_counter() - start:.0f} s")
    if args.embed_only:
        return 0
    rows = clip_features(args.data, args.cache, cfg)
    train = Faces.join(rows, tokens, [p for p in PARTS if p in rows])
    media = Faces.join(
        rows, tokens, [f"{s}_{k}" for k in ("photos", "frames") for s in ("train", "val", "test")]
    )
    records = {kind: read_manifest(args.data, kind) for kind in ("images", "videos")}
    group_of = source_groups(args.data)
    weights = block_weights(fp32_model_path(), TUNED_BLOCK - 1)
    rates = f"{args.members} head(s), head lr {args.head_lr:g}, block lr {args.block_lr:g}"
    print(f"# {len(train.keys)} training faces; {rates}, {args.epochs} passes after the fit")
    print("| row | probe (frozen) | probe + passes, block frozen | probe + passes, block tuned |")
    print("|---|---|---|---|")
    results = []
    for name in args.rows:
        fit_on, evaluate = row_sets(name, train, media, records, group_of)
        print(f"# {name}: {len(fit_on.keys)} training faces, {len(evaluate.keys)} evaluated", flush=True)
        auc = arms(fit_on, evaluate, cfg, weights, args)
        results.append((name, auc))
        print(
            f"| {name} | {auc['probe']:.3f} | {auc['head_more']:.3f} | {auc['block_tuned']:.3f} |", flush=True
        )
    held_rows = [a for n, a in results if n not in IN_DOMAIN]
    for arm in ("probe", "head_more", "block_tuned"):
        values = [a[arm] for a in held_rows]
        if values:
            print(f"finetune arm={arm} loso_rows={len(values)} mean_auc={np.mean(values):.3f} "
                  f"worst_auc={np.min(values):.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
