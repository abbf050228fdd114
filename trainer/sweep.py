"""Many training runs and their evaluations, a few at a time: seeds, the ablation, tuning.

    genadapt-sweep --data DATA --out OUT --preset cpu-small \
        --run source-only=source-only --run adapted=full --seeds 1 2 3 --eval target unseen

DATA is a `genadapt-data scenes` folder (source/ in the GTA5 layout, the other looks in the
Cityscapes layout). Each run `NAME-SEED` trains on DATA/source → DATA/<--adapt-to>, and its
selected checkpoint (checkpoint.pt: source-val selection) is evaluated on the val split of every
`--eval` look. A sweep picks up where it stopped: finished runs are kept, a run with a saved
state is resumed, so a sweep can span sessions.

Runs go seed by seed (each name of a seed, then the next seed), so a stopped sweep leaves whole
pairs. Each run gets cores/jobs threads. The small CPU networks use two cores better as two
single-threaded runs: 0.34 s per iteration each at cpu-demo on 2 cores, against 0.26 s for one
run on both, 1.5 times the throughput.

OUT/summary.json and OUT/summary.md (`--summary NAME` names them) hold, per run: the mIoU of
each look, the source-val mIoU of the selected checkpoint and its step; per name, mean ± std;
and per seed, the gain of each name over its baseline on the same seed: the first name, or the
one `--pair NAME=BASELINE` gives (a model that changes what every variant does, such as a
moving average of the weights, is compared with the source-only model that does the same).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genadapt.errors import GenadaptError
from genadapt.fileio import atomic_write_bytes
from genadapt.provenance import footnote, provenance
from genadapt.stats import paired_comparison
from genadapt.trainer.config import VARIANTS
from genadapt.trainer.run import RunFolder

log = logging.getLogger(__name__)
SUBSET = "cityscapes19"


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a name (a model, e.g. "adapted"), a variant, an optional YAML."""

    name: str
    variant: str
    seed: int
    config: Path | None = None

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.seed}"


@dataclass
class Sweep:
    data: Path
    out: Path
    preset: str
    runs: list[RunSpec]
    evals: list[str]
    adapt_to: str = "target"
    jobs: int = 2
    extra: list[str] = field(default_factory=list)  # more genadapt-train flags for every run
    summary_name: str = "summary"  # OUT/<name>.json and .md: sweeps may share a folder
    threads: int | None = None  # per run; default: the cores shared among the jobs
    pairs: dict[str, str] = field(default_factory=dict)  # name → its baseline (else the first)
    orderings: bool = False  # also pair every two models (an ablation's question)

    def run_all(self) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        threads = self.threads or max(1, (os.cpu_count() or 1) // self.jobs)
        order = execution_order(self.runs)
        with ThreadPoolExecutor(self.jobs) as pool:
            outcomes = list(pool.map(lambda spec: self.run_one(spec, threads), order))
        failed = [spec.folder for spec, ok in zip(order, outcomes, strict=True) if not ok]
        summary = summarize(self.out, self.runs, self.evals, self.pairs, self.orderings)
        summary["failed"] = failed
        path = self.out / self.summary_name
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(summary, indent=2).encode())
        atomic_write_bytes(path.with_suffix(".md"), summary_markdown(summary).encode())
        return summary

    def run_one(self, spec: RunSpec, threads: int) -> bool:
        folder = self.out / spec.folder
        reports = [folder / "eval" / f"{look}.json" for look in self.evals]
        if all(r.is_file() for r in reports):
            log.info("%s: done already", spec.folder)
            return True
        env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        workers = ["--set", f"num_workers={max(1, threads)}"]
        if (folder / "resume.pt").is_file():
            train = ["--resume", str(folder), *workers]
        else:
            shutil.rmtree(folder, ignore_errors=True)  # nothing saved yet: start it again
            train = [
                "--preset", self.preset, "--variant", spec.variant, "--seed", str(spec.seed),
                "--source-root", str(self.data / "source"),
                "--target-root", str(self.data / self.adapt_to),
                "--out", str(folder), *workers, *self.extra,
            ]  # fmt: skip
            if spec.config is not None:
                train += ["--config", str(spec.config)]
        commands = [[sys.executable, "-m", "genadapt.trainer", *train]]
        for look, report in zip(self.evals, reports, strict=True):
            commands.append([
                sys.executable, "-m", "genadapt.commands.eval", str(folder / "checkpoint.pt"),
                "--dataset", "cityscapes", "--root", str(self.data / look), "--split", "val",
                "--name", look, "--out", str(report.parent), "--workers", "1",
            ])  # fmt: skip
        folder.parent.mkdir(parents=True, exist_ok=True)
        log.info("%s: training (%d threads)", spec.folder, threads)
        with open(self.out / f"{spec.folder}.log", "ab") as out:
            for command in commands:
                status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
                if status.returncode != 0:
                    log.error("%s failed (%s): see %s.log", spec.folder, command[2], spec.folder)
                    return False
        log.info("%s: done", spec.folder)
        return True


def execution_order(runs: list[RunSpec]) -> list[RunSpec]:
    """Seed by seed, every name of a seed before the next seed: a sweep stopped part-way has
    whole pairs to compare, not ten baselines and no model."""
    return sorted(runs, key=lambda spec: spec.seed)  # stable: names keep their order


def summarize(
    out: Path,
    runs: list[RunSpec],
    evals: list[str],
    pairs: dict[str, str] | None = None,
    with_orderings: bool = False,
) -> dict:
    """Per run, per name (mean ± std) and per seed (gains over each name's baseline); with
    `with_orderings`, every two names paired as well (`orderings`)."""
    per_run: dict[str, dict] = {}
    for spec in runs:
        folder = out / spec.folder
        row: dict = {"name": spec.name, "variant": spec.variant, "seed": spec.seed}
        for look in evals:
            report = folder / "eval" / f"{look}.json"
            if report.is_file():
                data = json.loads(report.read_text())
                row[look] = data["miou"][SUBSET]
                row["classes_scored"] = data.get("classes_scored", {}).get(SUBSET)
        selected = _selected(folder)
        if selected:
            row |= selected
        starts = RunFolder(folder).provenance() if folder.is_dir() else []
        row["trained_at"] = sorted({f"{p['commit'][:12]}{'+dirty' if p['dirty'] else ''}"
                                    for p in starts})  # fmt: skip
        per_run[spec.folder] = row
    names = list(dict.fromkeys(spec.name for spec in runs))
    columns = [*evals, "source_val"]
    per_name = {
        name: {
            column: _mean_std([r.get(column) for r in per_run.values() if r["name"] == name])
            for column in columns
        }
        for name in names
    }
    against = baselines(names, pairs or {})
    return {
        "subset": SUBSET,
        "runs": per_run,
        "names": per_name,
        "baseline": names[0],
        "baselines": against,
        "paired": paired(per_run, against, columns),
        "orderings": orderings(per_run, names, columns) if with_orderings else {},
        "provenance": provenance(),
    }


def baselines(names: list[str], pairs: dict[str, str]) -> dict[str, str]:
    """Each name after the first → the name it is compared with (the first, unless paired)."""
    unknown = sorted(set(pairs) - set(names) | set(pairs.values()) - set(names))
    if unknown:
        raise GenadaptError(f"--pair names runs that are not in the sweep: {unknown}")
    return {name: pairs.get(name, names[0]) for name in names[1:] if name not in pairs.values()}


def paired(per_run: dict[str, dict], against: dict[str, str], columns: list[str]) -> dict:
    """Per name and column: the paired comparison with its baseline over the seeds that both
    finished (`stats.paired_comparison`)."""
    by_seed = {(r["name"], r["seed"]): r for r in per_run.values()}
    out: dict[str, dict] = {}
    for name, base in against.items():
        for column in columns:
            seeds = sorted(
                seed
                for (n, seed), row in by_seed.items()
                if n == name
                and row.get(column) is not None
                and by_seed.get((base, seed), {}).get(column) is not None
            )
            if seeds:
                out.setdefault(name, {})[column] = paired_comparison(
                    [by_seed[(base, s)][column] for s in seeds],
                    [by_seed[(name, s)][column] for s in seeds],
                ) | {"seeds": seeds, "baseline": base}
    return out


def orderings(per_run: dict[str, dict], names: list[str], columns: list[str]) -> dict:
    """With more than two models (an ablation), every pair of them, later name − earlier, paired
    by seed: which orderings the seeds separate (95% CI clear of 0) and which they do not."""
    if len(names) < 3:
        return {}
    out: dict[str, dict] = {}
    for i, earlier in enumerate(names):
        for later in names[i + 1 :]:
            comparisons = paired(per_run, {later: earlier}, columns).get(later)
            if comparisons:
                out[f"{later} − {earlier}"] = comparisons
    return out


def orderings_markdown(comparisons: dict) -> list[str]:
    """Lines of a table: each pair's mean difference and its 95% CI per look; a difference
    whose CI is clear of 0 is marked separable."""
    if not comparisons:
        return []
    columns = list(dict.fromkeys(c for looks in comparisons.values() for c in looks))
    lines = [
        "",
        "Every ordering, paired by seed (mean difference [95% CI]; **bold**: the CI is clear of 0,"
        " so the seeds separate the two):",
        "",
        f"| difference | {' | '.join(columns)} |",
        "|---|" + "---|" * len(columns),
    ]
    for pair, looks in comparisons.items():
        cells = []
        for column in columns:
            c = looks.get(column)
            if c is None or not c["ci95"]:
                cells.append("–" if c is None else f"{c['mean_gain']:+.1f} (n={c['n']})")
                continue
            low, high = c["ci95"]
            cell = f"{c['mean_gain']:+.1f} [{low:+.1f}, {high:+.1f}]"
            cells.append(f"**{cell}**" if low > 0 or high < 0 else cell)
        lines.append(f"| {pair} | {' | '.join(cells)} |")
    return lines


def _selected(folder: Path) -> dict | None:
    """The step and source-val mIoU of checkpoint.pt, read from the run's metrics."""
    selected = RunFolder(folder).selected_validation()
    return {"source_val": selected["miou"], "selected_step": selected["step"]} if selected else None


def _mean_std(values: list) -> dict | None:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return None
    std = float(v.std(ddof=1)) if v.size > 1 else None
    return {"mean": round(float(v.mean()), 2), "std": std and round(std, 2), "n": int(v.size)}


def summary_markdown(summary: dict) -> str:
    runs, names = summary["runs"], summary["names"]
    columns = list(next(iter(names.values())))
    scored = {r.get("classes_scored") for r in runs.values()} - {None}
    over = f", mean over {'/'.join(map(str, sorted(scored)))} classes" if scored else ""
    lines = [
        f"| mIoU ({summary['subset']}{over}) | {' | '.join(columns)} |",
        "|---|" + "---|" * len(columns),
    ]
    for name, cells in names.items():
        lines.append(f"| {name} | {' | '.join(_cell(cells[c]) for c in columns)} |")
    baseline = summary["baseline"]
    against = summary.get("baselines") or baselines(list(names), {})
    others = [f"{n} over {b}" for n, b in against.items() if b != baseline]
    also = f"; {', '.join(others)}" if others else ""
    lines += ["", f"Per seed (gain over the same seed's {baseline}{also}):", ""]
    header = f"| run | {' | '.join(columns)} | selected step |"
    lines += [header, "|---|" + "---|" * (len(columns) + 1)]
    for folder, row in runs.items():
        base = runs.get(f"{against.get(row['name'], '')}-{row['seed']}", {})
        cells = []
        for column in columns:
            value = row.get(column)
            if value is None:
                cells.append("–")
            elif row["name"] in against and base.get(column) is not None:
                cells.append(f"{value:.1f} ({value - base[column]:+.1f})")
            else:
                cells.append(f"{value:.1f}")
        lines.append(f"| {folder} | {' | '.join(cells)} | {row.get('selected_step', '–')} |")
    # Summaries written before the paired comparison existed: derived from their runs.
    comparisons = summary.get("paired") or paired(runs, against, columns)
    lines += paired_markdown(comparisons)
    lines += orderings_markdown(summary.get("orderings") or {})
    if summary.get("failed"):
        lines += ["", f"Failed: {', '.join(summary['failed'])}"]
    trained = sorted({c for row in runs.values() for c in row.get("trained_at", [])})
    lines += ["", f"Runs trained at commit(s): {', '.join(trained) or 'not recorded'}."]
    if "provenance" in summary:
        lines.append(footnote(summary["provenance"]))
    return "\n".join(lines) + "\n"


def paired_markdown(comparisons: dict) -> list[str]:
    """Lines of a table: each model's gain over its baseline, paired by seed."""
    if not comparisons:
        return []
    lines = [
        "",
        "Paired by seed (gain over the baseline; 95% CI of the mean gain, one-sided p of a gain):",
        "",
        "| model | baseline | look | mean gain ± sd | 95% CI | p (gain > 0) | seeds gaining |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, looks in comparisons.items():
        for look, c in looks.items():
            sd = f" ± {c['sd']:.1f}" if c["sd"] is not None else ""
            ci = f"[{c['ci95'][0]:+.1f}, {c['ci95'][1]:+.1f}]" if c["ci95"] else "–"
            p = f"{c['p_one_sided']:.3f}" if c["p_one_sided"] is not None else "–"
            lines.append(
                f"| {name} | {c.get('baseline', '–')} | {look} | {c['mean_gain']:+.1f}{sd} | {ci} "
                f"| {p} | {c['seeds_gaining']} of {c['n']} |"
            )
    return lines


def _cell(stats: dict | None) -> str:
    if stats is None:
        return "–"
    if stats["n"] == 1:
        return f"{stats['mean']:.1f}"
    return f"{stats['mean']:.1f} ± {stats['std']:.1f} (n={stats['n']})"


def parse_run(text: str) -> tuple[str, str, Path | None]:
    """NAME=VARIANT[:CONFIG.yaml]"""
    name, sep, rest = text.partition("=")
    variant, _, config = rest.partition(":")
    if not sep or not name or variant not in VARIANTS:
        raise GenadaptError(
            f"--run takes NAME=VARIANT[:CONFIG.yaml] with a variant of {VARIANTS}, got {text!r}"
        )
    if config and not Path(config).is_file():
        raise GenadaptError(f"--run {name}: no config file {config}")
    return name, variant, Path(config) if config else None


def parse_pair(text: str) -> tuple[str, str]:
    """NAME=BASELINE"""
    name, sep, baseline = text.partition("=")
    if not (sep and name and baseline):
        raise GenadaptError(f"--pair takes NAME=BASELINE, got {text!r}")
    return name, baseline


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genadapt-sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a genadapt-data scenes folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", default="cpu-small")
    p.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="NAME=VARIANT[:YAML]",
        help="a model to train per seed; the first is the baseline of the gains",
    )
    p.add_argument(
        "--pair",
        action="append",
        default=[],
        metavar="NAME=BASELINE",
        help="compare NAME with BASELINE instead of the first run (repeatable)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--eval", nargs="+", default=["target", "unseen"], help="looks to score")
    p.add_argument("--adapt-to", default="target", help="the look adapted to (its train split)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--summary", default="summary", help="name of the summary files in OUT")
    p.add_argument("--threads", type=int, default=None, help="per run (default: cores/jobs)")
    p.add_argument("--orderings", action="store_true",
                   help="also pair every two models by seed and say which differences the "
                        "seeds separate (an ablation's question)")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainConfig value for every new run (repeatable)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    from genadapt.cli import run_cli, setup_logging

    args = get_args_parser().parse_args(argv)
    setup_logging(False)

    def go() -> int:
        runs = [
            RunSpec(name, variant, seed, config)
            for name, variant, config in map(parse_run, args.run)
            for seed in args.seeds
        ]
        extra = [flag for kv in args.set for flag in ("--set", kv)]
        pairs = dict(parse_pair(text) for text in args.pair)
        sweep = Sweep(args.data, args.out, args.preset, runs, args.eval, args.adapt_to,
                      args.jobs, extra, args.summary, args.threads, pairs,
                      args.orderings)  # fmt: skip
        summary = sweep.run_all()
        print(summary_markdown(summary), end="")
        return 1 if summary["failed"] else 0

    return run_cli("genadapt-sweep", go, argv)


if __name__ == "__main__":
    sys.exit(main())
