"""Label validation of the build: entries -> entries with their stored label, label ids and record id; bad
labels (empty, characters outside the charset, too long for CTC) leave as dead letters."""
from __future__ import annotations

import apache_beam as beam

from ocr_core.charset import Charset
from ocr_core.errors import InputError
from ocr_core.inputs import Entry, Reject, reject_entry
from ocr_core.labels import validate_label
from ocr_core.records import record_id
from pipelines.transforms.dask_safe import only


class ValidateLabel(beam.DoFn):
    """Entry -> Entry with its final label, ids and record id; bad labels leave as dead letters."""

    REJECTS = "rejects"

    def __init__(self, characters: str, oov: str, max_steps: int):
        self.characters, self.oov, self.max_steps = characters, oov, max_steps

    def setup(self):
        self.charset = Charset(self.characters)

    def process(self, entry: Entry):
        checked = self.check(entry)
        yield checked if isinstance(checked, Entry) else beam.pvalue.TaggedOutput(self.REJECTS, checked)

    def check(self, entry: Entry) -> Entry | Reject:
        """The entry with its final label, ids and record id, or its dead letter (after `setup`)."""
        try:
            label, ids = validate_label(Charset.normalize(entry.label), self.charset, self.oov,
                                        self.max_steps)
        except InputError as e:
            return reject_entry(entry, e)
        return entry._replace(id=record_id(entry.source, label), label=label, label_ids=tuple(ids))


class ValidateLabels(beam.PTransform):
    """entries -> (entries with label ids and record ids, rejects)."""

    def __init__(self, validate: ValidateLabel):
        super().__init__()
        self.fn = validate

    def expand(self, entries):
        out = entries | "CheckLabel" >> beam.ParDo(self.fn).with_outputs(ValidateLabel.REJECTS, main="valid")
        return (out.valid | "OnlyEntries" >> only(Entry),
                out[ValidateLabel.REJECTS] | "OnlyRejects" >> only(Reject))
