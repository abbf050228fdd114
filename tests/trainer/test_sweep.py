"""The sweep: runs per name and seed, their evaluations, the summary, and picking up again."""

import json
from pathlib import Path

import pytest

from genadapt.errors import GenadaptError
from genadapt.provenance import provenance
from genadapt.scenes.generate import generate_scenes
from genadapt.trainer.sweep import RunSpec, execution_order, main, parse_run


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    generate_scenes(root, size=(64, 32), source=6, target_train=3, target_val=2, unseen=2,
                    workers=1)  # fmt: skip
    return root


def test_a_sweep_trains_evaluates_summarizes_and_resumes(scenes, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["--data", str(scenes), "--out", str(out), "--preset", "cpu-tiny",
            "--run", "source-only=source-only", "--run", "adapted=full",
            "--seeds", "1", "2", "--eval", "target", "--jobs", "2"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["runs"]) == {"source-only-1", "source-only-2", "adapted-1", "adapted-2"}
    commit = provenance()["commit"][:12]
    for row in summary["runs"].values():
        assert {"target", "source_val", "selected_step"} <= set(row)
        assert row["classes_scored"] is not None
        assert row["trained_at"] and row["trained_at"][0].startswith(commit)
    assert summary["provenance"]["commit"].startswith(commit)
    assert summary["names"]["adapted"]["target"]["n"] == 2
    pair = summary["paired"]["adapted"]["target"]
    runs = summary["runs"]
    gains = [runs[f"adapted-{s}"]["target"] - runs[f"source-only-{s}"]["target"] for s in (1, 2)]
    assert pair["seeds"] == [1, 2] and pair["gains"] == [round(g, 2) for g in gains]
    table = (out / "summary.md").read_text()
    assert table == capsys.readouterr().out
    assert "| adapted-2 |" in table and "gain over the same seed's source-only" in table
    assert f"Runs trained at commit(s): {commit}" in table and "Made by commit" in table
    assert "| adapted | source-only | target |" in table and "Paired by seed" in table

    # Picking up again: a finished run is kept; one whose evaluation is missing is resumed
    # (its saved state is complete, so it only evaluates) rather than trained again.
    kept = (out / "adapted-1" / "checkpoint.pt").stat().st_mtime_ns
    (out / "adapted-2" / "eval" / "target.json").unlink()
    resumed = (out / "adapted-2" / "checkpoint.pt").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "adapted-1" / "checkpoint.pt").stat().st_mtime_ns == kept
    assert (out / "adapted-2" / "checkpoint.pt").stat().st_mtime_ns == resumed
    assert (out / "adapted-2" / "eval" / "target.json").is_file()


def test_a_failed_run_is_reported_and_the_others_finish(scenes, tmp_path, capsys):
    out = tmp_path / "sweep"
    bad = tmp_path / "bad.yaml"
    bad.write_text("no_such_key: 1\n")
    status = main(["--data", str(scenes), "--out", str(out), "--preset", "cpu-tiny",
                   "--run", "source-only=source-only", "--run", f"broken=full:{bad}",
                   "--seeds", "1", "--eval", "target", "--jobs", "1",
                   "--summary", "tuning"])  # fmt: skip
    assert status == 1
    summary = json.loads((out / "tuning.json").read_text())
    assert "Failed: broken-1" in (out / "tuning.md").read_text()
    assert summary["failed"] == ["broken-1"] and "target" in summary["runs"]["source-only-1"]
    assert "unknown config key" in (out / "broken-1.log").read_text()


def test_runs_go_seed_by_seed_so_a_stopped_sweep_leaves_whole_pairs():
    runs = [RunSpec(name, variant, seed) for name, variant in (("source-only", "source-only"),
            ("adapted", "full")) for seed in (1, 2, 3)]  # fmt: skip
    assert [spec.folder for spec in execution_order(runs)] == [
        "source-only-1",
        "adapted-1",
        "source-only-2",
        "adapted-2",
        "source-only-3",
        "adapted-3",
    ]


def test_run_specs_are_checked(tmp_path):
    assert parse_run("adapted=full") == ("adapted", "full", None)
    with pytest.raises(GenadaptError, match="NAME=VARIANT"):
        parse_run("adapted=fancy")
    with pytest.raises(GenadaptError, match="no config file"):
        parse_run(f"adapted=full:{tmp_path / 'missing.yaml'}")


def test_a_model_is_compared_with_the_baseline_it_is_paired_with():
    from genadapt.trainer.sweep import baselines, paired, summary_markdown

    names = ["source-only", "source-only-ema", "full", "full-ema"]
    assert baselines(names, {"full-ema": "source-only-ema"}) == {
        "full": "source-only", "full-ema": "source-only-ema"}  # fmt: skip
    runs = {}
    for name, values in (("source-only", [10, 20]), ("source-only-ema", [12, 22]),
                         ("full", [13, 21]), ("full-ema", [15, 26])):  # fmt: skip
        for seed, value in zip((1, 2), values, strict=True):
            runs[f"{name}-{seed}"] = {"name": name, "seed": seed, "target": float(value)}
    against = baselines(names, {"full-ema": "source-only-ema"})
    result = paired(runs, against, ["target"])
    assert result["full-ema"]["target"]["gains"] == [3.0, 4.0]  # over source-only-ema
    assert result["full"]["target"]["gains"] == [3.0, 1.0]  # over source-only
    summary = {"subset": "x", "runs": runs, "baseline": "source-only", "baselines": against,
               "names": {n: {"target": None} for n in names}, "paired": result}  # fmt: skip
    text = summary_markdown(summary)
    assert "| full-ema-2 | 26.0 (+4.0) |" in text and "full-ema over source-only-ema" in text
    with pytest.raises(GenadaptError, match="not in the sweep"):
        baselines(names, {"full-ema": "source-only-slow"})


def test_an_ablation_says_which_orderings_its_seeds_separate():
    from genadapt.trainer.sweep import orderings, summary_markdown

    runs = {}
    values = {"source-only": [10, 11, 12], "feature-d": [10.2, 10.9, 12.1],
              "adapted": [15, 17, 16]}  # fmt: skip
    for name, per_seed in values.items():
        for seed, value in enumerate(per_seed, start=1):
            runs[f"{name}-{seed}"] = {"name": name, "seed": seed, "target": value}
    names = list(values)
    result = orderings(runs, names, ["target"])
    assert list(result) == [
        "feature-d − source-only",
        "adapted − source-only",
        "adapted − feature-d",
    ]
    assert result["adapted − feature-d"]["target"]["gains"] == [4.8, 6.1, 3.9]
    assert orderings(runs, names[:2], ["target"]) == {}  # two models: the paired table says it
    summary = {"subset": "x", "runs": runs, "baseline": "source-only",
               "names": {n: {"target": None} for n in names}, "orderings": result}  # fmt: skip
    text = summary_markdown(summary)
    separated = result["adapted − feature-d"]["target"]
    low = separated["ci95"][0]
    assert (
        low > 0 and f"| adapted − feature-d | **+{separated['mean_gain']:.1f} [+{low:.1f}" in text
    )
    assert "| feature-d − source-only | +0.1 [" in text  # not separable: not bold


def test_orderings_are_what_an_ablation_asks_for(tmp_path):
    from genadapt.trainer.sweep import SUBSET, get_args_parser, summarize

    runs = []
    for name, per_seed in (("source-only", [10, 11]), ("feature-d", [10, 12]), ("full", [14, 16])):
        for seed, value in enumerate(per_seed, start=1):
            runs.append(RunSpec(name, "source-only" if name == "source-only" else "full", seed))
            report = tmp_path / f"{name}-{seed}" / "eval" / "target.json"
            report.parent.mkdir(parents=True)
            report.write_text(json.dumps({"miou": {SUBSET: value}}))
    assert summarize(tmp_path, runs, ["target"])["orderings"] == {}  # a plain sweep: no
    ordered = summarize(tmp_path, runs, ["target"], with_orderings=True)["orderings"]
    assert ordered["full − feature-d"]["target"]["gains"] == [4.0, 4.0]
    args = ["--data", "d", "--out", "o", "--run", "a=full", "--orderings"]
    assert get_args_parser().parse_args(args).orderings
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    assert "--summary ablation --orderings" in makefile
