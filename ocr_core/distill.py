"""Distillation from a teacher recogniser (PP-OCRv6 small): its readings of a dataset's train records,
computed once and cached, and the loss that pulls the student towards them beside CTC (`ocr train --teacher`).

What is distilled: for every record, the teacher's character mass summed over its output frames, kept on the
student's charset and renormalised (blank left out) — a "bag of characters" with the teacher's doubts in it
(an `O` read 30 % as `0`). The frames themselves cannot be compared: PP-OCR reads a 48-px image at 8 columns
per frame, our CRNNs a 32-px one at 4, and their blank shares differ with that; the sum over time of the
non-blank mass does not depend on the frame rate. The student's side is the same sum over its own frames
(padding frames of a dynamic-width batch masked out), and the loss is KL(teacher || student) per record.

The teacher reads the stored, preprocessed pixels of each record (gray, the dataset's height), scaled to its
own input: what the student is shown, before augmentation, so every record of every dataset gets a target
without its source image. Targets are cached per dataset in `cache_dir`, keyed by the dataset's build
(manifest generation), so a resumed or repeated run pays for the teacher once.
"""
from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterable

import cv2
import numpy as np

from ocr_core import fs, records
from ocr_core.charset import Charset

TEACHERS = ("pp-ocrv6",)
MIN_MASS = 0.5  # a record whose teacher puts less non-blank mass on our charset than this gets no target


def default_cache_dir() -> str:
    return os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ocr", "teacher")


def column_map(student: Charset, teacher_characters: str) -> np.ndarray:
    """For student classes 1..N, the teacher's class of the same character (class i + 1 is character i of
    `teacher_characters`); -1 for a character the teacher does not have."""
    where = {c: i + 1 for i, c in enumerate(teacher_characters)}
    return np.array([where.get(c, -1) for c in student.characters], np.int64)


def bag_of_characters(probs: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Teacher probabilities [T, C_teacher] -> float32 [N + 1] target over the student's classes: the mass
    of each student character summed over frames, renormalised; class 0 (blank) is 0. All zeros when the
    teacher puts less than MIN_MASS on the student's characters (it reads nothing it could teach)."""
    known = columns >= 0
    mass = np.zeros(len(columns), np.float64)
    mass[known] = probs[:, columns[known]].sum(axis=0)
    out = np.zeros(len(columns) + 1, np.float32)
    if mass.sum() >= MIN_MASS:
        out[1:] = mass / mass.sum()
    return out


def teacher_input(gray: np.ndarray, height: int = 48) -> np.ndarray:
    """A record's stored pixels (uint8 gray H x W) -> uint8 BGR `height` x W' with the aspect ratio kept."""
    h, w = gray.shape
    width = max(8, int(np.ceil(height * w / h)))
    return cv2.cvtColor(cv2.resize(gray, (width, height), interpolation=cv2.INTER_LINEAR), cv2.COLOR_GRAY2BGR)


def compute_targets(shards: Iterable[str], columns: np.ndarray, forward: Callable,
                    batch: int = 64, log: Callable[[str], None] | None = None
                    ) -> tuple[list[str], np.ndarray]:
    """Runs the teacher (`forward`: list of BGR crops -> per-crop probabilities [T, C]) over every record of
    `shards`; returns (record ids, float32 targets [n, N + 1])."""
    ids: list[str] = []
    rows: list[np.ndarray] = []
    pending_ids: list[str] = []
    pending: list[np.ndarray] = []

    def flush():
        for rid, probs in zip(pending_ids, forward(pending)):
            ids.append(rid)
            rows.append(bag_of_characters(probs, columns))
        pending_ids.clear()
        pending.clear()
        if log is not None and len(ids) % (batch * 50) == 0:
            log(f"  teacher: {len(ids)} records")

    for path in shards:
        with fs.open_binary(path) as fh:
            for data in records.iter_tfrecords(fh, path):
                rec = records.WordRecord.decode(data)
                pending_ids.append(rec.id)
                pending.append(teacher_input(rec.image[:, :max(1, rec.content_width)]))
                if len(pending) == batch:
                    flush()
    if pending:
        flush()
    width = len(columns) + 1
    return ids, np.stack(rows) if rows else np.zeros((0, width), np.float32)


def cache_key(dataset_root: str, generation: str | None, teacher: str, student: Charset) -> str:
    text = f"{dataset_root}\n{generation}\n{teacher}\n{student.characters}"
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def save_targets(path: str, ids: list[str], targets: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, ids=np.array(ids, dtype="S20"), targets=targets.astype(np.float16))
    fs.makedirs(os.path.dirname(path))
    with fs.staged_write(path) as local:
        with open(local, "wb") as fh:
            fh.write(buf.getvalue())


def load_targets(path: str) -> tuple[list[str], np.ndarray]:
    with fs.local_copy(path) as local:
        with np.load(local) as z:
            return [i.decode() for i in z["ids"]], z["targets"].astype(np.float32)


def dataset_targets(dataset, teacher: str, student: Charset, cache_dir: str, log=print):
    """(ids, targets) of `dataset`'s train records (a `Dataset`), from the cache or computed and cached."""
    if teacher not in TEACHERS:
        raise ValueError(f"--teacher {teacher!r}: one of {', '.join(TEACHERS)}")
    path = os.path.join(cache_dir, cache_key(dataset.root, dataset.build_id, teacher, student) + ".npz")
    if fs.exists(path):
        return load_targets(path)
    from ocr_core.engine import open_ppocr

    ref = open_ppocr()
    columns = column_map(student, ref.characters)
    log(f"teacher {teacher}: reading the {dataset.count('train')} train records of {dataset.root} once "
        f"(cached in {path})")
    ids, targets = compute_targets(dataset.shards("train"), columns, ref.load(), log=log)
    save_targets(path, ids, targets)
    return ids, targets


class TargetTable:
    """Record id -> target row in tf.data; ids without one (or with an all-zero row) weigh nothing."""

    def __init__(self, ids: list[str], targets: np.ndarray):
        import tensorflow as tf

        self.width = targets.shape[1]
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(ids or [""], tf.string),
                                                tf.range(max(len(ids), 1), dtype=tf.int64)),
            default_value=-1)
        rows = np.concatenate([targets.reshape(-1, self.width), np.zeros((1, self.width), np.float32)])
        self._rows = tf.constant(rows, tf.float32)
        self._missing = len(rows) - 1

    def lookup(self, record_ids):
        """string ids (any shape) -> float32 targets [..., width]."""
        import tensorflow as tf

        i = self._table.lookup(record_ids)
        return tf.gather(self._rows, tf.where(i < 0, tf.cast(self._missing, tf.int64), i))

    def of_serialized(self, serialized):
        """Serialized Example(s) (scalar or [B]) -> their targets ([width] or [B, width])."""
        import tensorflow as tf

        spec = {records.ID: tf.io.FixedLenFeature([], tf.string)}
        if serialized.shape.rank == 0:
            return self.lookup(tf.io.parse_single_example(serialized, spec)[records.ID])
        return self.lookup(tf.io.parse_example(serialized, spec)[records.ID])


def distill_loss(probs, targets, logit_length=None, eps: float = 1e-6):
    """Per-example KL(target || student's bag of characters), float32 [B]; rows with an all-zero target
    give 0. `probs` [B, T, C] softmax, `targets` [B, C], `logit_length` [B] (None: all frames)."""
    import tensorflow as tf

    frames = probs[:, :, 1:]
    if logit_length is not None:
        frames = frames * tf.sequence_mask(logit_length, tf.shape(probs)[1], probs.dtype)[..., None]
    mass = tf.reduce_sum(frames, axis=1)
    student = mass / (tf.reduce_sum(mass, axis=-1, keepdims=True) + eps)
    q = tf.cast(targets[:, 1:], probs.dtype)
    kl = tf.reduce_sum(q * (tf.math.log(q + eps) - tf.math.log(student + eps)), axis=-1)
    return tf.where(tf.reduce_sum(q, axis=-1) > 0, kl, tf.zeros_like(kl))
