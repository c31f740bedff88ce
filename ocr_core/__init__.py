"""ocr_core: the pure library behind `ocr` (charset, preprocessing, records, model, CTC, metrics, tf.data),
and `Recognizer`, recognition from Python (`from ocr_core import Recognizer`)."""

__version__ = "0.1.0"
__all__ = ["Recognizer", "Reading"]


def __getattr__(name):  # imported on first use: the jobs' workers import ocr_core modules without it
    if name in __all__:
        from ocr_core import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'ocr_core' has no attribute {name!r}")
