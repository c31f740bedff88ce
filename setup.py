"""Packaging for `ocr`: usable for `pip install -e .` and as Beam's `--setup_file` on Dataflow workers."""
from setuptools import find_packages, setup

setup(
    name="ocr",
    version="0.1.0",
    description="Word-image text recognition (CRNN + CTC) with Beam dataset builds, tf.distribute "
                "training and Beam batch inference.",
    python_requires=">=3.10",
    packages=find_packages(include=["ocr_core", "ocr_core.*", "pipelines", "pipelines.*"]),
    package_data={"ocr_core": ["assets/*", "assets/**/*"], "configs": ["*.yaml"]},
    include_package_data=True,
    install_requires=[
        "apache-beam>=2.60",
        "crc32c",  # TFRecord checksums on read (ocr_core.records), without TensorFlow
        "numpy",
        "opencv-python-headless",
        "pillow",
        "pyarrow",
        "pyyaml",
        "rapidfuzz",  # edit distance for lexicon decoding's BK-tree (ocr_core.lexicon)
        "tfrecord",
        "tqdm",
    ],
    extras_require={
        # Training and the tf engine need TensorFlow; the dataset build does not. tf2onnx + onnx write a
        # bundle's model.onnx (`ocr train`, `ocr export`), which the onnx engine runs without TensorFlow.
        "tf": ["tensorboard", "tensorflow-cpu>=2.16; platform_machine=='x86_64'",
               "tensorflow>=2.16; platform_machine!='x86_64'", "tf2onnx>=1.17", "onnx"],
        "onnx": ["onnxruntime"],  # `ocr predict --engine onnx` (also what Dataflow workers need for it)
        "dask": ["dask[distributed]"],
        "dev": ["pytest", "pytest-timeout", "ruff"],
        # Peers of bench/real_accuracy.py only (never needed by `make test`). Install with
        # `--no-binary tesserocr` so tesserocr compiles against Debian's libtesseract-dev (PyPI's wheels
        # bundle a Tesseract of their own); EasyOCR needs torch and gets a venv of its own (see that script).
        "bench": ["tesserocr", "rapidocr-onnxruntime==1.4.4"],
    },
    entry_points={"console_scripts": ["ocr=pipelines.cli:main"]},
)
