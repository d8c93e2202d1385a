"""Leave-one-source-out for heads on frozen features: which rows exist, what each trains on, what it scores.

A row holds out one or more source groups (`ml.sources.source_group`): the head never sees any file of
them, in any split. It is then scored on every held-out file of every split plus the test split's real
files of the other groups, so its AUC says how well fakes of an unseen kind are told from real faces.
Pure functions over `MediaRecord`s and a feature lookup; the encoder never runs here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score

from ml.sources import MediaRecord

# Photo rows: each source, and the three GAN sources together (a generator family held out whole).
IMAGE_ROWS: dict[str, tuple[str, ...]] = {
    "lfw_faceswap": ("lfw_faceswap",),
    "stylegan_wfir": ("whichfaceisreal_stylegan",),
    "stylegan_rof": ("rof",),
    "genphotos": ("genphotos",),
    "dfdc_photos": ("dfdcface", "dfdc"),  # DFDC crops of both collections: one source
    "all_gan_photos": ("whichfaceisreal_stylegan", "rof", "genphotos"),
}
# Video rows: each FF++ method (c40), FF++ c23 apart, DFDC, DeepFaceLive, DreamTalk.
VIDEO_ROWS: dict[str, tuple[str, ...]] = {
    "ffpp_c40_Deepfakes": ("ffpp_c40_Deepfakes",),
    "ffpp_c40_Face2Face": ("ffpp_c40_Face2Face",),
    "ffpp_c40_FaceSwap": ("ffpp_c40_FaceSwap",),
    "ffpp_c40_NeuralTextures": ("ffpp_c40_NeuralTextures",),
    "ffpp_c23": (
        "ffpp_c23_Deepfakes",
        "ffpp_c23_Face2Face",
        "ffpp_c23_FaceSwap",
        "ffpp_c23_NeuralTextures",
        "ffpp_c23_original",
    ),
    "dfdc": ("dfdc", "dfdcface"),  # the DFDC photo crops come from DFDC videos too
    "dfl": ("dfl",),
    "dreamtalk": ("dreamtalk",),
}


# What each row's held-out fakes are, in words a user of the result page reads.
ROW_WORDS: dict[str, str] = {
    "lfw_faceswap": "classic landmark-warp face swaps on still photos",
    "stylegan_wfir": "StyleGAN2 faces (whichfaceisreal)",
    "stylegan_rof": "StyleGAN2 faces (thispersondoesnotexist, 2025)",
    "genphotos": "studio portraits from a second face generator",
    "dfdc_photos": "DFDC face-swap crops",
    "all_gan_photos": "generated (GAN) faces, when no generator is in training",
    "ffpp_c40_Deepfakes": "FaceForensics++ Deepfakes swaps (heavily compressed)",
    "ffpp_c40_Face2Face": "FaceForensics++ Face2Face expression reenactment (heavily compressed)",
    "ffpp_c40_FaceSwap": "FaceForensics++ FaceSwap (heavily compressed)",
    "ffpp_c40_NeuralTextures": "FaceForensics++ NeuralTextures mouth re-rendering (heavily compressed)",
    "ffpp_c23": "FaceForensics++ manipulations at light compression",
    "dfdc": "DFDC video face swaps",
    "dfl": "DeepFaceLive real-time face swaps on streamers",
    "dreamtalk": "audio-driven talking heads (DreamTalk, diffusion)",
}


def known_limits(
    results: Sequence[RowResult], below: float = 0.70, command: str = "python -m benchmarks.loso --quick"
) -> list[dict[str, str]]:
    """The rows a model is known to miss (held-out AUC under `below`), worst first, for its card."""
    weak = sorted((r for r in results if r.auc < below and r.row in ROW_WORDS), key=lambda r: r.auc)
    return [
        {
            "what": f"Fakes of a kind it never saw: {ROW_WORDS[r.row]}.",
            "measured": f"Held-out ROC AUC {r.auc:.2f} when left out of training ({r.n_fake} fakes, "
            f"{r.n_real} real).",
            "command": command,
        }
        for r in weak
    ]


@dataclass(frozen=True)
class RowResult:
    row: str
    auc: float
    n_fake: int
    n_real: int
    labels: np.ndarray
    scores: np.ndarray
    probs: np.ndarray | None = None  # calibrated, when the row's model was calibrated without the source
    # flagged out of distribution by the row's own training statistics (the product's UNCERTAIN reason)
    unfamiliar: np.ndarray | None = None
    # signals measured as candidate UNCERTAIN reasons, not (yet) the product's: name -> flag per item
    candidates: dict[str, np.ndarray] = field(default_factory=dict)
    held_out: np.ndarray | None = None  # which items are the held-out source's (the rest: others' test reals)
    # The out-of-distribution check's parts, so other operating points can be measured on the same row:
    # the distance-from-the-mean flag, and each item's and each val file's distance to its nearest
    # reference faces (`ml.uncertainty.neighbour_distance`).
    far_from_mean: np.ndarray | None = None
    neighbour_distance: np.ndarray | None = None
    val_neighbour_distance: np.ndarray | None = None


@dataclass(frozen=True)
class OperatingPoint:
    """When the product says UNCERTAIN: a calibrated probability inside `band`, or a face farther from its
    nearest reference faces than the `quantile` of the val files' own distances (None: that check off); a
    face far from the training mean is always uncertain."""

    band: tuple[float, float]
    quantile: float | None

    @property
    def label(self) -> str:
        check = "off" if self.quantile is None else f"q{round(self.quantile * 100)}"
        return f"{self.band[0]:.2f}-{self.band[1]:.2f} / {check}"


def split_row(
    records: Sequence[MediaRecord], held_out: tuple[str, ...]
) -> tuple[list[MediaRecord], list[MediaRecord]]:
    """(training records, evaluation records) of one row."""
    train = [r for r in records if r.split == "train" and r.group not in held_out]
    evaluation = [r for r in records if r.group in held_out]
    evaluation += [r for r in records if r.split == "test" and r.label == 0 and r.group not in held_out]
    return train, evaluation


def auc_or_nan(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else float("nan")


def score_row(
    row: str,
    evaluation: Sequence[MediaRecord],
    score: Callable[[Sequence[MediaRecord]], np.ndarray],
) -> RowResult:
    labels = np.array([r.label for r in evaluation])
    scores = score(evaluation)
    n_fake = int(labels.sum())
    return RowResult(row, auc_or_nan(labels, scores), n_fake, len(labels) - n_fake, labels, scores)


def summary_line(results: Sequence[RowResult]) -> str:
    """The line the issue asks for: rows, mean and worst held-out AUC."""
    aucs = [r.auc for r in results if not np.isnan(r.auc)]
    return (
        f"loso_rows={len(aucs)} loso_mean_auc={np.mean(aucs):.3f} loso_worst_auc={min(aucs):.3f}"
        if aucs
        else "loso_rows=0 loso_mean_auc=nan loso_worst_auc=nan"
    )


def inside_band(probs: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Which calibrated probabilities fall in the uncertain band (low inclusive, high exclusive)."""
    return (probs >= band[0]) & (probs < band[1])


def pooled_report(rows: Sequence[RowResult], abstained: Callable[[RowResult], np.ndarray]) -> dict:
    """`ml.metrics.selective_report` over every row's items at once, each row abstaining where `abstained`
    says."""
    from ml.metrics import selective_report

    return selective_report(
        np.concatenate([r.labels for r in rows]),
        np.concatenate([r.probs for r in rows]),
        np.concatenate([abstained(r) for r in rows]),
    )


def abstains(result: RowResult, band: tuple[float, float], candidate: str | None = None) -> np.ndarray:
    """Which held-out items the product would call UNCERTAIN: a probability inside `band`, or a face
    unlike the training faces (when the row measured that); with `candidate`, also where that measured
    signal fires."""
    inside = inside_band(result.probs, band)
    flags = [result.unfamiliar, result.candidates.get(candidate) if candidate else None]
    for flag in flags:
        if flag is not None:
            inside = inside | flag
    return inside


def abstains_at(result: RowResult, point: OperatingPoint) -> np.ndarray:
    """Which items the product would call UNCERTAIN at `point` (a row that kept the check's parts)."""
    inside = inside_band(result.probs, point.band)
    if result.far_from_mean is not None:
        inside = inside | result.far_from_mean
    if point.quantile is not None and result.neighbour_distance is not None:
        limit = np.quantile(result.val_neighbour_distance, point.quantile)
        inside = inside | (result.neighbour_distance > limit)
    return inside


def operating_point_lines(
    held_out: Sequence[RowResult], in_domain: Sequence[RowResult], points: Sequence[OperatingPoint]
) -> list[str]:
    """One line per operating point: the selective figures pooled over the held-out rows, and on each
    in-domain set (decided share and confidently wrong), so a band and a check are chosen by both. The
    accuracy on all items bounds what any abstention can reach at 80 % coverage (at most it / 0.8)."""

    def pooled(rows: Sequence[RowResult], point: OperatingPoint) -> dict:
        return pooled_report(rows, lambda r: abstains_at(r, point))

    names = " | ".join(f"{r.row} decided | {r.row} confidently wrong" for r in in_domain)
    lines = [
        "| band / neighbour check | decided | accuracy on decided | accuracy at 80 % coverage "
        f"| accuracy on all | confidently wrong | {names} |",
        "|---|---|---|---|---|---|" + "---|---|" * len(in_domain),
    ]
    for point in points:
        rep = pooled(held_out, point)
        cells = [
            f"{own['decided_share']:.3f} | {own['confidently_wrong']:.3f}"
            for own in (pooled([r], point) for r in in_domain)
        ]
        lines.append(
            f"| {point.label} | {rep['decided_share']:.3f} | {rep['decided_accuracy']:.3f} | "
            f"{rep['accuracy_at_80']:.3f} | {rep['risk_coverage']['1.0']:.3f} | "
            f"{rep['confidently_wrong']:.3f} | {' | '.join(cells)} |"
        )
    return lines


def selective_lines(results: Sequence[RowResult], band: tuple[float, float]) -> list[str]:
    """What the UNCERTAIN verdict buys on held-out fakes: per row and pooled over the rows (photos, videos)
    that have calibrated probabilities. An item abstains as the product's does: inside `band`, or out of
    distribution. The last column is the share flagged out of distribution."""
    from ml.metrics import selective_report

    lines = [
        "| held-out row | decided | accuracy on decided | accuracy at 80 % coverage | confidently wrong "
        "| unfamiliar |",
        "|---|---|---|---|---|---|",
    ]
    rows = [r for r in results if r.probs is not None]
    for r in rows:
        rep = selective_report(r.labels, r.probs, abstains(r, band))
        unfamiliar = "–" if r.unfamiliar is None else f"{r.unfamiliar.mean():.2f}"
        lines.append(
            f"| {r.row} | {rep['decided_share']:.2f} | {rep['decided_accuracy']:.3f} | "
            f"{rep['accuracy_at_80']:.3f} | {rep['confidently_wrong']:.3f} | {unfamiliar} |"
        )
    if rows:
        lines.append(pooled_line("loso_pooled", rows, band))
    names = sorted({name for r in rows for name in r.candidates})
    for name in names:
        lines.append(pooled_line(f"loso_pooled_with_{name}", rows, band, name))
    for name in names:
        lines += candidate_lines(rows, band, name)
    return lines


def candidate_lines(rows: Sequence[RowResult], band: tuple[float, float], name: str) -> list[str]:
    """Per row, what one candidate signal does: how often it fires on the held-out source's files and on
    the other sources' test reals (in-domain), and the selective figures with it."""
    from ml.metrics import selective_report

    lines = [
        f"| with {name} | fires on held-out files | on other sources' reals | decided "
        "| accuracy at 80 % coverage | confidently wrong |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        flag = r.candidates.get(name)
        if flag is None:
            continue
        held = r.held_out if r.held_out is not None else np.ones(len(flag), bool)
        rep = selective_report(r.labels, r.probs, abstains(r, band, name))
        others = f"{flag[~held].mean():.2f}" if (~held).any() else "–"
        lines.append(
            f"| {r.row} | {flag[held].mean():.2f} | {others} | {rep['decided_share']:.2f} | "
            f"{rep['accuracy_at_80']:.3f} | {rep['confidently_wrong']:.3f} |"
        )
    return lines


def pooled_line(
    label: str, rows: Sequence[RowResult], band: tuple[float, float], candidate: str | None = None
) -> str:
    """The selective figures over every row at once, as one `key=value` line."""
    pooled = pooled_report(rows, lambda r: abstains(r, band, candidate))
    return (
        f"{label} decided={pooled['decided_share']:.3f} "
        f"decided_acc={pooled['decided_accuracy']:.3f} acc_at_80_coverage={pooled['accuracy_at_80']:.3f} "
        f"confidently_wrong={pooled['confidently_wrong']:.3f}"
    )


def format_table(results: Sequence[RowResult]) -> str:
    lines = ["| held-out row | AUC | fakes | reals |", "|---|---|---|---|"]
    lines += [f"| {r.row} | {r.auc:.3f} | {r.n_fake} | {r.n_real} |" for r in results]
    aucs = [r.auc for r in results if not np.isnan(r.auc)]
    if aucs:
        lines.append(f"| **mean / worst** | {np.mean(aucs):.3f} / {min(aucs):.3f} | | |")
    return "\n".join(lines)
