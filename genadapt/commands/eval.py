"""`genadapt-eval`: mIoU with the paper's protocol, and `genadapt-eval retrieval` (Sec. 5.4).

genadapt-eval MODEL --dataset cityscapes --root DATA/cityscapes [--split val] [--out DIR]
genadapt-eval retrieval CKPT [CKPT ...] --source-dataset gta5 --source-root DATA/gta5 \
    --target-dataset cityscapes --target-root DATA/cs
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from genadapt.checkpoint import Checkpoint, load_checkpoint
from genadapt.cli import (
    add_dataset_arguments,
    add_device_argument,
    add_runtime_arguments,
    run_cli,
    runtime_options,
    setup_logging,
)
from genadapt.datasets import SegmentationDataset
from genadapt.errors import GenadaptError
from genadapt.evaluate import evaluate, markdown_table, write_report
from genadapt.fileio import atomic_write_bytes
from genadapt.model import FCN8s
from genadapt.provenance import provenance
from genadapt.retrieval import embed_images, plot_retrieval, retrieval_scores, split_pool_queries
from genadapt.runtime import load_segmenter
from genadapt.stats import paired_comparison

log = logging.getLogger(__name__)


# `genadapt-eval MODEL ...` is `genadapt-eval score MODEL ...`: scoring is the default.
SUBCOMMANDS = ("score", "table", "retrieval")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genadapt-eval",
        description="Score a model on a dataset (score, the default: genadapt-eval MODEL "
        "--dataset KIND --root ROOT), tabulate reports (table), or run the paper's "
        "cross-domain retrieval (retrieval).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_score_arguments(
        sub.add_parser(
            "score",
            help="per-class IoU and mIoU of a model on a dataset (one confusion matrix, "
            "prediction at network size upsampled to the label resolution)",
        )
    )
    add_table_arguments(
        sub.add_parser(
            "table",
            help="one Markdown table of mIoU from eval JSON reports; a METHOD:DATASET given "
            "several times (one per seed) is shown as mean ± standard deviation",
        )
    )
    add_retrieval_arguments(
        sub.add_parser(
            "retrieval",
            help="cross-domain retrieval with pooled fc7 embeddings (paper Sec. 5.4, Fig. 4)",
        )
    )
    return parser


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="checkpoint.pt, exported .onnx or .engine")
    add_runtime_arguments(parser)
    add_dataset_arguments(parser)
    parser.add_argument("--split", default=None, help="split (cityscapes: val, camvid: test)")
    parser.add_argument("--out", type=Path, default=None, help="folder for JSON and Markdown")
    parser.add_argument("--name", default=None, help="report name (default DATASET_SPLIT)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="parallel data loading processes")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N images")
    parser.add_argument("-v", "--verbose", action="store_true")


def add_retrieval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", nargs="+", type=Path)
    add_dataset_arguments(parser, "source")
    add_dataset_arguments(parser, "target")
    parser.add_argument("--source-split", default=None)
    parser.add_argument("--target-split", default="train")
    parser.add_argument("--pool", type=int, default=50, help="pool images per domain")
    parser.add_argument("--queries", type=int, default=25, help="query images per domain")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 5, 10, 20, 40])
    parser.add_argument("--seed", type=int, default=0)
    add_device_argument(parser, default="cpu")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("-v", "--verbose", action="store_true")


def main(args: argparse.Namespace) -> int:
    segmenter = load_segmenter(args.model, runtime_options(args))
    dataset = SegmentationDataset(
        args.dataset, args.root, args.split, label_space=segmenter.spec.label_space
    )
    result = evaluate(segmenter, dataset, args.batch_size, args.workers, args.limit).to_dict()
    name = args.name or f"{args.dataset}_{args.split or dataset.kind.default_split}"
    out_dir = args.out or args.model.parent / "eval"
    json_path, _ = write_report(out_dir, name, result)
    print(markdown_table({name: result}), end="")
    log.info("%s; reports in %s", result["convention"], json_path.parent)
    return 0


def _domain_embeddings(
    checkpoint: Checkpoint, model: FCN8s, kind: str, root: str, split: str | None, args
) -> tuple[np.ndarray, np.ndarray]:
    """(pool, queries) embeddings of one domain; the two index sets are disjoint."""
    data = SegmentationDataset(kind, root, split, checkpoint.spec.label_space, with_labels=False)
    pool, queries = split_pool_queries(len(data), args.pool, args.queries, args.seed)
    size, norm = checkpoint.spec.input_size, checkpoint.spec.normalization
    return embed_images(model, data, pool, size, norm), embed_images(
        model, data, queries, size, norm
    )


def main_retrieval(args: argparse.Namespace) -> int:
    results: dict[str, dict] = {}
    for path in args.checkpoints:
        checkpoint = load_checkpoint(path)
        model = checkpoint.build_model().to(args.device)
        src_pool, src_q = _domain_embeddings(
            checkpoint, model, args.source_dataset, args.source_root, args.source_split, args
        )
        tgt_pool, tgt_q = _domain_embeddings(
            checkpoint, model, args.target_dataset, args.target_root, args.target_split, args
        )
        name = _unique_name(path, results)
        results[name] = retrieval_scores(src_q, tgt_q, src_pool, tgt_pool, args.k)
        log.info("%s: A_k %s, B_k %s", name, results[name]["A_k"], results[name]["B_k"])
    report = {"models": results, "provenance": provenance()}
    out = atomic_write_bytes(args.out / "retrieval.json", json.dumps(report, indent=2).encode())
    plot_retrieval(results, str(args.out / "retrieval.png"))
    for name, r in results.items():
        rows = zip(r["k"], r["A_k"], r["B_k"], strict=True)
        cells = [f"k={k}: |A|={a:.2f} |B|={b:.2f}" for k, a, b in rows]
        print(f"{name}: {', '.join(cells)}; mAP src→tgt {r['map_source_to_target']:.3f}")
    log.info("wrote %s and retrieval.png", out)
    return 0


def _unique_name(path: Path, taken: dict) -> str:
    # Run folders hold checkpoint.pt: name a model by its folder when the file name says nothing.
    name = path.parent.name if path.stem in ("checkpoint", "model", "last") else path.stem
    return name if name not in taken else f"{name}_{len(taken)}"


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", nargs="+", metavar="METHOD:DATASET=REPORT.json")
    parser.add_argument("--subset", default="cityscapes19", help="which mIoU to show")
    parser.add_argument(
        "--pair",
        metavar="METHOD",
        help="also each other method's gain over METHOD, paired report by report (by seed)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")


def main_table(args: argparse.Namespace) -> int:
    table = render_table(args.reports, args.subset, args.pair)
    print(table, end="")
    if args.out:
        atomic_write_bytes(args.out, table.encode())
    return 0


def render_table(specs: list[str], subset: str = "cityscapes19", pair: str | None = None) -> str:
    """The Markdown `genadapt-eval table` prints for `specs` (METHOD:DATASET=REPORT.json); with
    `pair`, each other method's gain over it, paired report by report in the order given (one
    report per seed), with its 95% CI and one-sided p (`genadapt.stats`)."""
    values: dict[tuple[str, str], list[float]] = {}
    scored: set[int] = set()
    for spec in specs:
        key, sep, path = spec.partition("=")
        method, colon, dataset = key.partition(":")
        if not (sep and colon):
            raise GenadaptError(f"expected METHOD:DATASET=REPORT.json, got {spec!r}")
        report = json.loads(Path(path).read_text())
        if subset not in report["miou"]:
            raise GenadaptError(f"{path} has no mIoU over {subset}: {list(report['miou'])}")
        values.setdefault((method, dataset), []).append(report["miou"][subset])
        if subset in report.get("classes_scored", {}):  # reports from before it: unknown
            scored.add(report["classes_scored"][subset])
    table = mean_std_table(values, subset, scored)
    if pair is not None:
        table += "\n" + paired_table(values, pair)
    return table


def paired_table(values: dict[tuple[str, str], list[float]], baseline: str) -> str:
    """Per method and dataset: per-seed gains over `baseline`, mean, 95% CI, one-sided p."""
    rows = [
        f"| gain over {baseline} | per seed | mean | 95% CI | p (gain > 0) |",
        "|---|---|---|---|---|",
    ]
    methods = [m for m in dict.fromkeys(m for m, _ in values) if m != baseline]
    for method in methods:
        for (m, dataset), candidate in values.items():
            base = values.get((baseline, dataset))
            if m != method or base is None:
                continue
            if len(base) != len(candidate):
                raise GenadaptError(
                    f"{method}:{dataset} has {len(candidate)} reports and {baseline}:{dataset} "
                    f"{len(base)}: pairing needs one of each per seed"
                )
            c = paired_comparison(base, candidate)
            gains = ", ".join(f"{g:+.1f}" for g in c["gains"])
            ci = f"[{c['ci95'][0]:+.1f}, {c['ci95'][1]:+.1f}]" if c["ci95"] else "–"
            p = f"{c['p_one_sided']:.3f}" if c["p_one_sided"] is not None else "–"
            rows.append(f"| {method}, {dataset} | {gains} | {c['mean_gain']:+.1f} | {ci} | {p} |")
    return "\n".join(rows) + "\n"


def mean_std_table(
    values: dict[tuple[str, str], list[float]], subset: str, scored: set[int] | None = None
) -> str:
    """Mean ± std per method and dataset; the header says how many classes each mIoU averages
    when the reports say so (e.g. 17 of cityscapes19 on the built-in scenes)."""
    methods = list(dict.fromkeys(m for m, _ in values))
    datasets = list(dict.fromkeys(d for _, d in values))
    over = ""
    if scored:
        counts = "/".join(str(n) for n in sorted(scored))
        over = f", mean over {counts} classes"
    rows = [f"| mIoU ({subset}{over}) | {' | '.join(datasets)} |", "|---|" + "---|" * len(datasets)]
    for method in methods:
        cells = []
        for dataset in datasets:
            v = np.asarray(values.get((method, dataset), []), dtype=float)
            if v.size == 0:
                cells.append("–")
            elif v.size == 1:
                cells.append(f"{v[0]:.1f}")
            else:
                cells.append(f"{v.mean():.1f} ± {v.std(ddof=1):.1f} (n={v.size})")
        rows.append(f"| {method} | {' | '.join(cells)} |")
    return "\n".join(rows) + "\n"


def cli(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    default = bool(given) and given[0] not in (*SUBCOMMANDS, "-h", "--help")
    args = get_args_parser().parse_args(["score", *given] if default else given)
    setup_logging(getattr(args, "verbose", False))
    mains = {"score": main, "table": main_table, "retrieval": main_retrieval}
    prog = "genadapt-eval" if args.command == "score" else f"genadapt-eval {args.command}"
    return run_cli(prog, lambda: mains[args.command](args), given)


if __name__ == "__main__":
    sys.exit(cli())
