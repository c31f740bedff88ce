"""`ocr_core.config`: every shipped config loads by name and by path and reads back from its own YAML, and
unknown keys or names are clear errors."""
import re

import pytest
import yaml

from ocr_core.charset import Charset
from ocr_core.config import CONFIG_DIR, OcrConfig, config_from_dict, load_config

SHIPPED = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def test_the_shipped_configs_are_found():
    assert {"seed", "small", "demo", "default"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_loads_by_name_and_path_and_reads_back_from_its_yaml(name):
    cfg = load_config(name)
    assert isinstance(cfg, OcrConfig) and cfg.name == name
    assert load_config(str(CONFIG_DIR / f"{name}.yaml")) == cfg
    assert config_from_dict(yaml.safe_load(cfg.to_yaml())) == cfg  # what a bundle's config.yaml holds
    assert all(isinstance(k, int) for k in cfg.model.pools)
    assert Charset(cfg.charset).num_classes == len(cfg.charset) + 1
    if cfg.model.dynamic_width:  # text lines (docs/lines.md): 32 (or 48) high, up to 32 times as wide
        m = cfg.model
        assert m.height in (32, 48) and m.width == 32 * m.height and m.time_steps == m.width // 4 - 1
        assert " " in cfg.charset
    else:
        assert cfg.model.time_steps == 31  # the 32x128 input contract of every shipped word model


def test_defaults_are_the_seed_network():
    assert config_from_dict({}) == OcrConfig()
    assert OcrConfig().model.time_steps == 31 and OcrConfig().model.convs == [64, 128, 256, 256, 512, 512]


def test_unknown_keys_are_named_with_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=re.escape(
            "config: unknown keys ['modle']; known: ['charset', 'model', 'name', 'train']")):
        config_from_dict({"modle": {"width": 160}})
    path = tmp_path / "typo.yaml"
    path.write_text("name: typo\nmodel:\n  width: 160\ntrain:\n  epoch: 3\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}: train: unknown keys ['epoch']; known: [")):
        load_config(str(path))
    with pytest.raises(ValueError, match=re.escape("config: model: unknown keys ['hieght']")):
        config_from_dict({"model": {"hieght": 32}})


def test_an_unknown_name_lists_the_shipped_configs():
    names = ", ".join(SHIPPED)
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"config 'nope' not found (a YAML path, a model bundle, 'shipped' or one of: {names})")):
        load_config("nope")


def test_a_bundle_gives_the_config_it_was_trained_with(tmp_path):
    """`--config shipped`, `--config BUNDLE` and `--config BUNDLE/config.yaml` (what `--init-from`'s error
    advises) all load the bundle's training config, so a fine-tune keeps its architecture and charset."""
    from ocr_core.bundle import SHIPPED_MODEL

    bundle = yaml.safe_load((SHIPPED_MODEL / "config.yaml").read_text())
    want = config_from_dict(bundle["config"])
    assert load_config("shipped") == load_config(str(SHIPPED_MODEL)) == want
    assert load_config(str(SHIPPED_MODEL / "config.yaml")) == want
    (tmp_path / "config.yaml").write_text("bundle_format: 1\nconfig: {name: x, modle: {}}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_config(str(tmp_path))
