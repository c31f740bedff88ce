"""Typed configuration of a model and its training recipe, loaded from YAML (configs/*.yaml, shipped in
the package)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ocr_core.charset import DEFAULT_CHARACTERS


def _config_dir() -> Path:
    """configs/ as a wheel installs it (ocr_core/configs, see setup.py), else the source tree's own."""
    here = Path(__file__).resolve().parent
    installed = here / "configs"
    return installed if installed.is_dir() else here.parent / "configs"


CONFIG_DIR = _config_dir()


@dataclass
class ModelConfig:
    """CRNN architecture. Defaults are exactly the seed blog's network."""

    height: int = 32
    width: int = 128  # with dynamic_width: the maximum width
    # Text lines (docs/lines.md): input width and CTC time steps follow each image's aspect ratio (Keras
    # input (height, None, 1)); images narrower than min_width are padded to it.
    dynamic_width: bool = False
    min_width: int = 16
    convs: list[int] = field(default_factory=lambda: [64, 128, 256, 256, 512, 512])  # 3x3, same, ReLU
    batchnorm_after: list[int] = field(default_factory=lambda: [5, 6])  # 1-based conv numbers
    # Keras' 0.99 leaves ~0.99**steps of the initial variance in the moving statistics: short CPU runs
    # (a few hundred steps) then predict nothing in inference mode. Small configs use 0.9.
    batchnorm_momentum: float = 0.99
    # 1-based conv number -> pool size (rows, cols)
    pools: dict[int, list[int]] = field(default_factory=lambda: {1: [2, 2], 2: [2, 2], 4: [2, 1], 6: [2, 1]})
    final_conv: int = 512  # 2x2 valid conv that brings the height to 1
    rnn_units: list[int] = field(default_factory=lambda: [128, 128])  # one BiLSTM per entry
    rnn_dropout: float = 0.2
    # 1-based conv number -> how many ResNet-style residual blocks (3x3 conv, ReLU, BN, 3x3 conv, BN, added
    # to their input) follow that conv's batch norm and pool. Their last BN starts at zero scale, so a model
    # with blocks starts out computing exactly what the model without them computes: `--init-from` can grow
    # a trained bundle deeper (see pipelines/train.initial_weights).
    residual_blocks: dict[int, int] = field(default_factory=dict)

    @property
    def time_steps(self) -> int:
        """CTC time steps of an input `width` wide (dynamic width: of the widest)."""
        return self.time_steps_for(self.width)

    def time_steps_for(self, width: int) -> int:
        """CTC time steps of an input `width` pixels wide (a multiple of `stride` for dynamic width)."""
        w = width
        for rows_cols in self.pools.values():
            w //= rows_cols[1]
        return w - 1

    @property
    def stride(self) -> int:
        """Input columns per time step: the product of the pools' widths."""
        return math.prod(rows_cols[1] for rows_cols in self.pools.values())


@dataclass
class TrainConfig:
    """Training recipe."""

    batch_size: int = 256
    epochs: int = 20
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"  # cosine | constant
    warmup_epochs: float = 0.0
    early_stopping_patience: int = 5
    augment: bool = True
    # RandAugment-like geometry (PARSeq): small rotation, shear, scale and shift of each image
    augment_geometry: bool = False
    # camera degradations (PARSeq's blur and Poisson noise, STRAug's camera group): shot noise, motion blur,
    # defocus, low resolution, one of them on half of the images
    augment_camera: bool = False
    # STRAug's weather group: fog, rain, snow or shadow on half of the images
    augment_weather: bool = False
    shuffle_buffer: int = 4096
    max_steps_per_epoch: int | None = None  # cap for quick runs
    max_val_batches: int | None = None


@dataclass
class OcrConfig:
    name: str = "seed"
    charset: str = DEFAULT_CHARACTERS
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.model.dynamic_width:  # fixed-width configs (and bundles) read exactly as before
            for key in DYNAMIC_MODEL_KEYS:
                d["model"].pop(key)
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


DYNAMIC_MODEL_KEYS = ("dynamic_width", "min_width")


def _build(cls, data: dict, where: str):
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    return cls(**data)


def config_from_dict(data: dict, where: str = "config") -> OcrConfig:
    data = dict(data or {})
    model = _build(ModelConfig, dict(data.pop("model", {}) or {}), f"{where}: model")
    model.pools = {int(k): list(v) for k, v in model.pools.items()}
    model.residual_blocks = {int(k): int(v) for k, v in (model.residual_blocks or {}).items()}
    bad = [k for k, v in model.residual_blocks.items() if not 1 <= k <= len(model.convs) or v < 0]
    if bad:
        raise ValueError(f"{where}: model.residual_blocks: conv numbers 1..{len(model.convs)} with a count "
                         ">= 0 "
                         f"(got {model.residual_blocks})")
    train = _build(TrainConfig, dict(data.pop("train", {}) or {}), f"{where}: train")
    cfg = _build(OcrConfig, data, where)
    cfg.model, cfg.train = model, train
    return cfg


SHIPPED = "shipped"  # the name of the shipped model where a bundle is taken
SHIPPED_MODEL = Path(__file__).resolve().parent / "assets" / "default_model"  # its bundle


def load_config(name_or_path: str) -> OcrConfig:
    """Loads `configs/NAME.yaml` by name, a YAML file by path, or the config a model bundle was trained with:
    "shipped" (the shipped model's), a bundle directory or its config.yaml."""
    path = Path(name_or_path)
    if name_or_path == SHIPPED and not path.exists():
        path = SHIPPED_MODEL
    if not path.exists() and (CONFIG_DIR / f"{name_or_path}.yaml").exists():
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if path.is_dir() and (path / "config.yaml").exists():
        path = path / "config.yaml"
    if not path.is_file():
        choices = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"config {name_or_path!r} not found (a YAML path, a model bundle, "
                                f"{SHIPPED!r} or one of: {choices})")
    with open(path) as fh:
        data = yaml.safe_load(fh)
    if isinstance(data, dict) and "bundle_format" in data and isinstance(data.get("config"), dict):
        data = data["config"]  # a bundle's config.yaml: the training config is its `config` block
    return config_from_dict(data, str(path))
