import pytest

from genadapt.trainer.cli import cli
from genadapt.trainer.config import ConfigError, TrainConfig, resolve_config


def test_paper_defaults():
    config = TrainConfig()
    assert (config.lr_fc, config.lr_gd, config.betas_gd) == (1e-5, 1e-4, (0.7, 0.999))
    assert (config.alpha, config.beta, config.iterations, config.seed) == (0.1, 0.1, 100_000, 1337)
    assert config.size == (1024, 512) and config.width == 1.0


def test_precedence_defaults_preset_yaml_flags(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("width: 0.5\nalpha: 0.3\nsize: 512x256\nlr_fc: 1e-4\n")
    config = resolve_config("cpu-tiny", yaml_file, {"alpha": 0.7, "seed": None})
    assert config.alpha == 0.7  # flag beats YAML
    assert config.width == 0.5  # YAML beats preset (0.0625)
    assert config.size == (512, 256)
    assert config.lr_fc == 1e-4  # YAML 1.1 reads 1e-4 as a string: coerced by the field's type
    assert config.iterations == 4  # preset beats default
    assert config.beta == 0.1 and config.seed == 1337  # defaults; an unset flag changes nothing


def test_bad_configs_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key"):
        resolve_config(None, None, {"learning_rate": 1})
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_config("gpu-huge")
    with pytest.raises(ConfigError, match="variant must be"):
        resolve_config(None, None, {"variant": "cycada"})
    with pytest.raises(ConfigError, match="iterations must be a int"):
        resolve_config(None, None, {"iterations": "many"})
    with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
        resolve_config(None, None, {"size": "big"})
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        resolve_config(None, tmp_path / "list.yaml")


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli(["--preset", "cpu-tiny", "--out", str(tmp_path / "r")]) == 2
    assert "source_root is not set" in capsys.readouterr().err
    args = ["--preset", "cpu-tiny", "--source-root", str(tmp_path / "missing"),
            "--target-root", str(tmp_path), "--out", str(tmp_path / "r2")]  # fmt: skip
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert "genadapt-train: error: gta5 folder not found" in err and "Traceback" not in err
    assert cli(["--resume", str(tmp_path / "nothing")]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_bad_data_leaves_no_run_folder(tmp_path):
    out = tmp_path / "run"
    args = ["--preset", "cpu-tiny", "--source-root", str(tmp_path), "--target-root",
            str(tmp_path), "--out", str(out)]  # fmt: skip
    assert cli(args) == 2
    assert not out.exists()


def test_the_paper_presets_ask_for_imagenet_weights(tmp_path, capsys):
    from genadapt.trainer.cli import cli

    args = ["--preset", "paper", "--source-root", str(tmp_path), "--target-root", str(tmp_path),
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert cli(args) == 2
    assert "--vgg-weights FILE" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_paper_presets_train_as_the_authors_did():
    # fp32 (bf16 only when asked, and then called a deviation), the authors' lr decay per
    # variant, frames scaled with their aspect kept.
    full, source_only = (
        resolve_config("paper"),
        resolve_config("paper", overrides={"variant": "source-only"}),
    )
    assert full.amp == "off" and resolve_config("paper", overrides={"amp": "bf16"}).amp == "bf16"
    assert (full.lr_decay_epochs, source_only.lr_decay_epochs) == (8, 3)
    assert full.resize == "cover" and full.vgg_layout == "auto" and not full.deterministic
    # A config.yaml written before amp took a name held a bool; it reads as it meant.
    assert TrainConfig(amp=True).amp == "bf16" and TrainConfig(amp="False").amp == "off"


def test_data_protocol_and_precision_choices_are_checked():
    with pytest.raises(ConfigError, match="resize 'authors' trains on random crops"):
        resolve_config("paper", overrides={"resize": "authors"})
    authors = resolve_config("paper", overrides={"resize": "authors", "crop": "640x320"})
    assert authors.input_size == (640, 320)  # evaluated at the crop size, as their eval script
    for key, value in (("resize", "squash"), ("amp", "fp16"), ("vgg_layout", "bgr")):
        with pytest.raises(ConfigError, match=key):
            resolve_config("paper", overrides={key: value})


def test_the_resize_rules_are_the_datasets_own():
    from genadapt.datasets import RESIZE_RULES as DATASET_RULES
    from genadapt.trainer.config import RESIZE_RULES

    assert RESIZE_RULES == DATASET_RULES
