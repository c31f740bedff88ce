"""ocr_core: the pure library behind `ocr` (charset, preprocessing, records, model, CTC, metrics, tf.data)."""

__version__ = "0.1.0"
