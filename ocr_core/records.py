"""The one TFRecord `tf.train.Example` schema of ocr datasets (version 1): keys, encode, decode, and the
TFRecord framing (`frame` to write, `iter_tfrecords` to read with both CRCs checked).

Encoding never needs TensorFlow: the dataset build uses the `tfrecord` package's copy of the Example
proto. Both packages register `tensorflow.BytesList` in protobuf's default pool and cannot be loaded in
one process, so `example_proto()` picks TensorFlow's copy whenever TensorFlow is already loaded.
"""
from __future__ import annotations

import hashlib
import struct
import sys
from dataclasses import dataclass

import crc32c
import numpy as np

from ocr_core.charset import Charset, CharsetError

SCHEMA_VERSION = 1

ID = "id"
SOURCE = "source"
IMAGE_RAW = "image/raw"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_CONTENT_WIDTH = "image/content_width"
LABEL_TEXT = "label/text"
LABEL_IDS = "label/ids"

SCHEMA = {
    ID: "bytes: stable id, sha1(source + '\\n' + label)[:20]",
    SOURCE: "bytes: original uri",
    IMAGE_RAW: "bytes: preprocessed uint8 gray pixels, row-major, height x width",
    IMAGE_HEIGHT: "int64",
    IMAGE_WIDTH: "int64",
    IMAGE_CONTENT_WIDTH: "int64: width before right padding",
    LABEL_TEXT: "bytes: UTF-8 ground truth",
    LABEL_IDS: "int64 list: charset ids 1..N (0 is the CTC blank)",
}


class RecordError(OSError):
    """A truncated or corrupt TFRecord file, or a record that does not match its dataset."""


def record_id(source: str, label: str) -> str:
    """Stable id of one (image, label) entry: dedup key, split key and join key."""
    return hashlib.sha1(f"{source}\n{label}".encode()).hexdigest()[:20]


def example_proto():
    """The `Example` message class: TensorFlow's when TensorFlow is loaded, else the `tfrecord` package's."""
    if "tensorflow" in sys.modules:
        from tensorflow.core.example import example_pb2
    else:
        from tfrecord import example_pb2
    return example_pb2.Example


@dataclass
class WordRecord:
    """One stored training example."""

    id: str
    source: str
    image: np.ndarray  # uint8 H x W
    content_width: int
    text: str
    label_ids: list[int]

    def encode(self) -> bytes:
        """Serialized `tf.train.Example` bytes."""
        ex = example_proto()()
        f = ex.features.feature
        f[ID].bytes_list.value.append(self.id.encode())
        f[SOURCE].bytes_list.value.append(self.source.encode())
        f[IMAGE_RAW].bytes_list.value.append(np.ascontiguousarray(self.image, np.uint8).tobytes())
        f[IMAGE_HEIGHT].int64_list.value.append(int(self.image.shape[0]))
        f[IMAGE_WIDTH].int64_list.value.append(int(self.image.shape[1]))
        f[IMAGE_CONTENT_WIDTH].int64_list.value.append(int(self.content_width))
        f[LABEL_TEXT].bytes_list.value.append(self.text.encode())
        f[LABEL_IDS].int64_list.value.extend(int(i) for i in self.label_ids)
        # deterministic=True sorts the feature map: TensorFlow's and tfrecord's protos otherwise order it
        # differently, and shards must be byte-identical whichever process (and runner) wrote them.
        return ex.SerializeToString(deterministic=True)

    @classmethod
    def decode(cls, data: bytes) -> WordRecord:
        """Parses serialized Example bytes (no TensorFlow needed)."""
        ex = example_proto().FromString(data)
        f = ex.features.feature

        def one(key, kind):
            return getattr(f[key], kind).value[0]

        h, w = one(IMAGE_HEIGHT, "int64_list"), one(IMAGE_WIDTH, "int64_list")
        img = np.frombuffer(one(IMAGE_RAW, "bytes_list"), np.uint8).reshape(h, w)
        return cls(id=one(ID, "bytes_list").decode(), source=one(SOURCE, "bytes_list").decode(), image=img,
                   content_width=one(IMAGE_CONTENT_WIDTH, "int64_list"),
                   text=one(LABEL_TEXT, "bytes_list").decode(), label_ids=list(f[LABEL_IDS].int64_list.value))


def check_label(record: WordRecord, charset: Charset, where: str) -> None:
    """Raises RecordError unless the record's label ids are its label text encoded with `charset`.

    Catches a dataset whose manifest charset was edited after the build (the model would learn and be
    scored on ids that mean other characters).
    """
    try:
        ok = charset.encode(record.text) == list(record.label_ids)
    except CharsetError:
        ok = False
    if not ok:
        raise RecordError(f"{where}: record {record.id} (label {record.text!r}) has label ids "
                          f"{list(record.label_ids)} that do not encode its text in the dataset's charset "
                          "— the manifest charset differs from the one the dataset was built with; "
                          "rebuild it")


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: CRC-32C, rotated right by 15 bits plus a constant."""
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord: little-endian length, masked CRC-32C of the length, data, masked CRC-32C of the data."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def iter_tfrecords(fh, name: str = "<stream>"):
    """Yields the serialized records of an uncompressed TFRecord stream, checking both CRCs of each.

    Args:
        fh: a binary file object (`open(path, "rb")` or Beam's `FileSystems.open(path)`).
        name: the file, for error messages.

    Raises:
        RecordError: naming the file and the byte offset of the first truncated or corrupt record.
    """
    offset = 0
    while True:
        head = fh.read(12)
        if not head:
            return
        if len(head) < 12:
            raise RecordError(f"{name}: truncated TFRecord header at byte {offset}")
        length, length_crc = struct.unpack("<QI", head)
        if masked_crc32c(head[:8]) != length_crc:
            raise RecordError(f"{name}: corrupt TFRecord at byte {offset} (length checksum mismatch)")
        data, footer = fh.read(length), fh.read(4)
        if len(data) < length or len(footer) < 4:
            raise RecordError(f"{name}: truncated TFRecord body at byte {offset}")
        if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            raise RecordError(f"{name}: corrupt TFRecord at byte {offset} (data checksum mismatch)")
        offset += 16 + length
        yield data
