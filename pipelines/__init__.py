"""pipelines: the runnable jobs (Beam build, training, Beam inference, evaluation, demo) and the `ocr` CLI."""
