"""The input layer shared by the dataset build and batch predict: what an --input is (kinds, manifest lines,
file names, path resolution, the inputs' common root), listing a glob or folder, and reading a manifest's
lines (their bytes: `ocr_core.manifest_bytes`). Reading one image is `ocr_core.image_bytes`.

Pure functions, no pipeline: the jobs wrap them in Beam transforms (`pipelines/transforms/read_inputs.py`).
"""
from __future__ import annotations

import csv
import json
import os
import posixpath
import re
from typing import NamedTuple

from apache_beam.io.filesystem import FileSystem
from apache_beam.io.filesystems import FileSystems

from ocr_core.errors import InputError, UsageError
from ocr_core.manifest_bytes import ByteRange, manifest_lines

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")
HEADERS = {("path", "label"), ("filename", "label"), ("image", "text")}

class InputSpec(NamedTuple):
    """One --input: a manifest (tsv, csv, mjsynth annotation) or a glob of label-in-file-name images."""

    index: int
    uri: str  # resolved (absolute local path or scheme://)
    kind: str  # tsv | csv | mjsynth | glob
    given: str  # as typed on the command line; origins start with it
    root: str = ""  # common directory of all inputs: split keys are image paths relative to it


class Entry(NamedTuple):
    """A light (pixel-free) example: where the image is and what it says."""

    id: str  # record_id(source, label), set by ValidateLabels
    source: str
    label: str
    label_ids: tuple
    origin: str  # "labels.tsv:17" / the file matched by a glob
    order: tuple  # (input index, line or file number): sorts origins in input order
    key: str = ""  # the image path relative to the inputs' common directory: what the split hashes


class Reject(NamedTuple):
    """A dead letter: one input that did not become a record, and why."""

    source: str
    origin: str
    label: str | None
    reason: str
    detail: str
    order: tuple

    def to_json(self) -> str:
        return json.dumps({"source": self.source, "origin": self.origin, "label": self.label,
                           "reason": self.reason, "detail": self.detail}, ensure_ascii=False)


def reject_entry(entry: Entry, err: InputError) -> Reject:
    return Reject(entry.source, entry.origin, entry.label, err.reason, err.detail, entry.order)


def _line_reject(origin: str, order: tuple, detail: str) -> Reject:
    """A manifest line that names no image and label. The detail never quotes the line: `origin` points to it,
    and an --input that is not a manifest at all (a config, a key file) must not be copied into rejects."""
    return reject_entry(Entry("", "", None, (), origin, order), InputError("malformed_line", detail))



def input_kind(uri: str) -> str:
    """The kind of an --input from its name: glob, csv, tsv or mjsynth (annotation*.txt)."""
    if any(c in uri for c in "*?["):
        return "glob"
    name = posixpath.basename(uri).lower()
    for ext in (".gz", ".bz2", ".zst", ".deflate"):
        name = name.removesuffix(ext)
    if name.endswith(".csv"):
        return "csv"
    if name.startswith("annotation") and name.endswith(".txt"):
        return "mjsynth"
    if name.endswith((".tsv", ".txt")):
        return "tsv"
    if name.endswith(IMAGE_EXTENSIONS):
        return "glob"
    raise UsageError(f"{uri}: unknown input kind; use a .tsv/.csv manifest, an MJSynth annotation*.txt, "
                     "a glob of images named like 123_Label_456.jpg, or a folder of such images")


def _is_uri(path: str) -> bool:
    return "://" in path


def input_dir(uri: str, kind: str) -> str:
    """The directory an input's image paths hang from: a manifest's folder, a glob's fixed prefix or the
    folder itself."""
    if kind == "dir":
        return uri.rstrip("/")
    if kind == "glob":
        fixed = re.split(r"[*?\[]", uri, maxsplit=1)[0]
        return fixed.rstrip("/") if fixed.endswith("/") else posixpath.dirname(fixed)
    return posixpath.dirname(uri)


def common_root(dirs: list[str]) -> str:
    """The deepest directory containing all of `dirs` (same scheme), '' when they share none."""
    split = [d.rstrip("/").split("/") for d in dirs]
    common = []
    for parts in zip(*split):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return "/".join(common)


def location_key(source: str, root: str) -> str:
    """`source` relative to `root`: the same for a copy of the tree anywhere (another disk, gs://)."""
    prefix = root.rstrip("/") + "/"
    return source[len(prefix):] if root and source.startswith(prefix) else source


def resolve_path(base_dir: str, path: str) -> str:
    """A manifest's image path made absolute against the manifest's directory (local or scheme://)."""
    if _is_uri(path):
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{posixpath.normpath(rest)}"
    if path.startswith("/"):
        return os.path.normpath(path)
    if _is_uri(base_dir):
        scheme, rest = base_dir.split("://", 1)
        return f"{scheme}://{posixpath.normpath(posixpath.join(rest, path))}"
    return os.path.normpath(os.path.join(base_dir, path))


def label_from_filename(path: str) -> str | None:
    """MJSynth naming: the text between the first and the last underscore of the file name, else None."""
    stem = posixpath.splitext(posixpath.basename(path))[0]
    first, last = stem.find("_"), stem.rfind("_")
    if first < 0 or first == last:
        return None
    return stem[first + 1:last]


def parse_line(kind: str, line: str) -> tuple[str, str]:
    """(image path, label) of one manifest line; raises ValueError with a readable reason."""
    if kind == "tsv":
        fields = line.split("\t")
    elif kind == "csv":
        fields = next(csv.reader([line]), [])
    elif kind == "mjsynth":
        fields = line.split()
        if len(fields) not in (1, 2) or (len(fields) == 2 and not fields[1].lstrip("-").isdigit()):
            raise ValueError("expected '<path> <lexicon index>'")
        label = label_from_filename(fields[0])
        if label is None:
            raise ValueError("the file name is not <n>_<label>_<n>.<ext>")
        return fields[0], label
    else:
        raise ValueError(f"unknown manifest kind {kind}")
    if len(fields) != 2:
        sep = "a tab" if kind == "tsv" else "a comma"
        raise ValueError(f"expected 2 fields (path and label separated by {sep}), got {len(fields)}")
    if not fields[0].strip():
        raise ValueError("empty image path")
    return fields[0].strip(), fields[1]


def _is_header(kind: str, line: str) -> bool:
    if kind == "mjsynth":
        return False
    try:
        fields = parse_line(kind, line)
    except ValueError:
        return False
    return tuple(f.strip().lower() for f in fields) in HEADERS


def image_files(spec: InputSpec) -> list[str]:
    """The sorted files a glob matches, or every image (by extension) in a folder and all its subfolders."""
    pattern = spec.uri if spec.kind == "glob" else FileSystems.join(spec.uri, "**")
    paths = list_files(pattern)
    return paths if spec.kind == "glob" else [p for p in paths if p.lower().endswith(IMAGE_EXTENSIONS)]


def list_files(pattern: str) -> list[str]:
    """The sorted paths a pattern matches (Beam's syntax: `*` within a folder, `**` across folders).

    Local patterns are listed here, not by Beam's local filesystem, which silently leaves out every entry it
    cannot stat (a dangling or looping symlink): such an entry is an input that cannot be read, so it must
    become a reject or an error row, not vanish. Other schemes go through Beam's FileSystems.
    """
    if _is_uri(pattern):
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    fixed = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    if fixed == pattern:  # no wildcard: the path itself
        return [pattern] if os.path.lexists(pattern) and not os.path.isdir(pattern) else []
    root = fixed if fixed.endswith("/") else (os.path.dirname(fixed) or ".")
    wanted = re.compile(FileSystem.translate_pattern(pattern))
    found = []
    for folder, _, names in os.walk(root):
        found += [p for p in (os.path.join(folder, n) for n in names) if wanted.match(p)]
    return sorted(found)


def file_entry(spec: InputSpec, path: str, n: int, labelled: bool = True) -> Entry | Reject:
    """The Entry of the n-th file of a glob/folder input: its label from the name (<n>_<label>_<n>.<ext>), or
    a malformed_name Reject; `labelled` False: every file, its label None (predict)."""
    label = label_from_filename(path) if labelled else None
    entry = Entry("", path, label, (), path, (spec.index, n),
                  location_key(path, spec.root or input_dir(spec.uri, spec.kind)))
    if label is not None or not labelled:
        return entry
    name = posixpath.basename(path)
    err = InputError("malformed_name", f"file name {name!r} is not <n>_<label>_<n>.<ext>")
    return reject_entry(entry, err)


def line_entry(spec: InputSpec, line: str, origin: str, order: tuple,
               base_dir: str | None = None) -> Entry | Reject:
    """The Entry of one counted manifest line (image path resolved against the manifest's folder, `base_dir`
    when the caller has it), or a malformed_line Reject."""
    try:
        path, label = parse_line(spec.kind, line)
    except ValueError as e:
        return _line_reject(origin, order, f"{e} (a line of {len(line)} characters)")
    base_dir = base_dir if base_dir is not None else input_dir(spec.uri, spec.kind)
    source = resolve_path(base_dir, path)
    return Entry("", source, label, (), origin, order, location_key(source, spec.root or base_dir))


def _decode(raw: bytes, at_start: bool) -> tuple[str | None, int]:
    """A manifest line without its line break (a UTF-8 byte order mark dropped at the file's start), or
    (None, position of the first invalid byte) when it is not UTF-8."""
    try:
        return raw.decode("utf-8-sig" if at_start else "utf-8").rstrip("\r\n"), -1
    except UnicodeDecodeError as e:
        return None, e.start


def _is_skipped(kind: str, line: str | None) -> bool:
    """Blank lines, `#` comments and header lines are not inputs (an undecodable line is: it becomes a
    reject). A header is recognised on any line, not only on the first content line, so that a reader of one
    byte range, which does not know which line that is, applies the same rule as a reader of the whole file:
    only an image literally named `path` with the label `label` would be lost."""
    return line is not None and (not line.strip() or line.lstrip().startswith("#") or _is_header(kind, line))


def image_file_patterns(folder: str) -> list[str]:
    """One recursive, case-insensitive pattern per image extension (`DIR/**.[pP][nN][gG]`, ...)."""
    def any_case(ext: str) -> str:
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in ext)

    return [FileSystems.join(folder, "**" + any_case(ext)) for ext in IMAGE_EXTENSIONS]


def has_image_file(folder: str) -> bool:
    """Whether a folder or one of its subfolders holds a file with an image extension. Lists only until the
    first one (one listing per extension at most): a folder can hold millions of files."""
    return any(FileSystems.match([p], limits=[1])[0].metadata_list for p in image_file_patterns(folder))


def read_input(spec: InputSpec, part: int = 0, parts: int = 1, labelled: bool = True):
    """Yields an Entry (id not yet set) or a Reject (malformed_line / malformed_name) per counted input.

    Blank lines, `#` comments and a header line are skipped and not counted. With parts > 1 only every
    parts-th counted input (from `part`) is yielded, so several workers can share one manifest. `labelled`
    False: the files of a glob or folder carry no label (their names are not read as labels).
    """
    if spec.kind in ("glob", "dir"):
        for n, path in enumerate(image_files(spec)):
            if n % parts != part:
                continue
            yield file_entry(spec, path, n, labelled)
        return
    yield from _manifest_items(spec, manifest_lines(spec), 1, lambda n: n % parts == part)


def _manifest_items(spec: InputSpec, lines, first_line_no: int, keep=None):
    """Entries and Rejects of raw manifest `lines` numbered from `first_line_no`; `keep(n)` filters the n-th
    counted input."""
    counted = 0
    base_dir = input_dir(spec.uri, spec.kind)
    for line_no, raw in enumerate(lines, first_line_no):
        line, bad_at = _decode(raw, line_no == 1)
        if _is_skipped(spec.kind, line):
            continue
        n, counted = counted, counted + 1
        if keep is None or keep(n):
            origin, order = f"{spec.given}:{line_no}", (spec.index, line_no)
            if line is None:
                yield _line_reject(origin, order, f"line is not UTF-8 (invalid byte at position {bad_at})")
            else:
                yield line_entry(spec, line, origin, order, base_dir)


def count_range(spec: InputSpec, r: ByteRange) -> int:
    """The number of lines in the range."""
    return sum(1 for _ in manifest_lines(spec, r.start, r.end))


def read_range(spec: InputSpec, r: ByteRange, first_line_no: int):
    """Entries and Rejects of the lines of one range, numbered from `first_line_no` (the lines before it
    plus one)."""
    yield from _manifest_items(spec, manifest_lines(spec, r.start, r.end), first_line_no)


def _is_folder(uri: str) -> bool:
    return uri.endswith("/") or (not _is_uri(uri) and os.path.isdir(uri))


def resolve_inputs(given: list[str], flag: str = "--input") -> list[InputSpec]:
    """InputSpecs for the values of `flag` (named in the errors); raises UsageError for inputs that do not
    exist, cannot be read or hold no input at all (an empty or header-only manifest, a folder without
    images)."""
    specs = []
    for i, g in enumerate(given):
        uri = g if _is_uri(g) else os.path.abspath(g)
        kind = "dir" if _is_folder(uri) else input_kind(uri)
        spec = InputSpec(i, uri, kind, g)
        if kind == "glob":  # only one match is listed here: a glob can stand for millions of files
            if not FileSystems.match([uri], limits=[1])[0].metadata_list:
                raise UsageError(f"{flag} {g}: matched no files")
        elif kind != "dir" and not FileSystems.exists(uri):
            raise UsageError(f"{flag} {g}: no such file")
        elif kind == "dir":
            if not has_image_file(uri):
                raise UsageError(f"{flag} {g}: no inputs: no images ({', '.join(IMAGE_EXTENSIONS)}) in it "
                                 "or its subfolders")
        else:
            try:
                first = next(read_input(spec), None)  # reads up to the first counted line
            except OSError as e:
                raise UsageError(f"{flag} {g}: cannot read it ({e})") from e
            if first is None:
                raise UsageError(f"{flag} {g}: no inputs: the manifest is empty or holds only a header, "
                                 "comments and blank lines")
        specs.append(spec)
    root = common_root([input_dir(s.uri, s.kind) for s in specs])
    return [s._replace(root=root) for s in specs]
