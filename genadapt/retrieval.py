"""Cross-domain retrieval (the paper's Sec. 5.4, Figure 4).

Each image becomes one vector: F's fc7 embedding averaged over space, L2-normalized. A pool holds
N source and N target images; disjoint query sets of each domain retrieve their k nearest pool
items by cosine similarity. |A_k| is the mean number of target items among a source query's k
neighbours, |B_k| the mean number of source items among a target query's. Embeddings that ignore
the domain give |A_k| ≈ |B_k| ≈ k/2; a domain-separated embedding gives ≈ 0. mAP scores the
ranking of the other domain's items over the whole pool.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from genadapt.datasets import SegmentationDataset, Transform
from genadapt.imaging import to_input_tensor
from genadapt.model import FCN8s


@torch.inference_mode()
def embed_images(
    model: FCN8s,
    dataset: SegmentationDataset,
    indices: list[int],
    size: tuple[int, int],
    normalization,
    batch_size: int = 4,
) -> np.ndarray:
    """(len(indices), C) L2-normalized, spatially averaged fc7 embeddings."""
    dataset.transform = Transform(size=size, train=False)
    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, collate_fn=list)
    vectors = []
    device = next(model.parameters()).device
    for batch in loader:
        images = [s["image"].permute(1, 2, 0).numpy() for s in batch]
        x = to_input_tensor(images, size, normalization).to(device)
        fc7 = model.embed(x)[2]  # (B, C, H/32, W/32)
        vectors.append(torch.nn.functional.normalize(fc7.mean(dim=(2, 3)), dim=1).cpu())
    return torch.cat(vectors).numpy()


def average_precision(relevant_sorted: np.ndarray) -> float:
    """AP of one ranking, given the relevance (bool) of the items in ranked order."""
    hits = np.cumsum(relevant_sorted)
    if hits[-1] == 0:
        return float("nan")
    precision_at_hits = hits[relevant_sorted] / (np.flatnonzero(relevant_sorted) + 1)
    return float(precision_at_hits.mean())


def retrieval_scores(
    source_queries: np.ndarray,
    target_queries: np.ndarray,
    source_pool: np.ndarray,
    target_pool: np.ndarray,
    ks: list[int],
) -> dict[str, object]:
    """|A_k|, |B_k| for each k and the cross-domain mAP in both directions."""
    pool = np.concatenate([source_pool, target_pool])
    is_target = np.r_[np.zeros(len(source_pool), bool), np.ones(len(target_pool), bool)]
    if max(ks) > len(pool):
        raise ValueError(f"k={max(ks)} exceeds the pool of {len(pool)} images")

    def ranked_relevance(queries: np.ndarray, want_target: bool) -> np.ndarray:
        order = np.argsort(-(queries @ pool.T), axis=1, kind="stable")  # (Q, 2N)
        return is_target[order] == want_target

    src_rel = ranked_relevance(source_queries, want_target=True)
    tgt_rel = ranked_relevance(target_queries, want_target=False)
    return {
        "k": list(ks),
        "A_k": [float(src_rel[:, :k].sum(1).mean()) for k in ks],
        "B_k": [float(tgt_rel[:, :k].sum(1).mean()) for k in ks],
        "map_source_to_target": float(np.nanmean([average_precision(r) for r in src_rel])),
        "map_target_to_source": float(np.nanmean([average_precision(r) for r in tgt_rel])),
    }


def split_pool_queries(n_items: int, pool: int, queries: int, seed: int) -> tuple[list, list]:
    """Disjoint, seeded index sets: `pool` items for the pool, `queries` for the queries."""
    if pool + queries > n_items:
        raise ValueError(f"need {pool} pool + {queries} query images, the dataset has {n_items}")
    order = np.random.default_rng(seed).permutation(n_items).tolist()
    return order[:pool], order[pool : pool + queries]


def plot_retrieval(results: dict[str, dict], path: str) -> None:
    """|A_k| and |B_k| against k, one line per model, like the paper's Figure 4."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for name, r in results.items():
        axes[0].plot(r["k"], r["A_k"], marker="o", label=name)
        axes[1].plot(r["k"], r["B_k"], marker="o", label=name)
    titles = [
        "|A_k|: target items among a source query's k-NN",
        "|B_k|: source items among a target query's k-NN",
    ]
    for ax, title in zip(axes, titles, strict=True):
        ks = next(iter(results.values()))["k"]
        ax.plot(ks, [k / 2 for k in ks], linestyle=":", color="grey", label="domain-blind (k/2)")
        ax.set(title=title, xlabel="k")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("items of the other domain")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
