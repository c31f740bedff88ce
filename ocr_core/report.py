"""The self-contained HTML report of `ocr evaluate`: the Jinja2 template `templates/report.html.j2` (package
data), autoescaped, rendered from the metrics dict (or several, one per model, side by side) and the worst
mistakes' thumbnails."""
from __future__ import annotations

import base64
import functools
import posixpath
from itertools import groupby

import cv2
import jinja2
import numpy as np

from ocr_core.metrics import align

TEMPLATE = "report.html.j2"


def visible(c: str) -> str:
    """A character made visible in a table cell (space and control characters spelled out)."""
    if c == " ":
        return "␣"
    if not c.isprintable():
        return f"U+{ord(c):04X}"
    return c


def percent(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def number(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def bar_width(x: float | None) -> float:
    """The filled width of an accuracy bar, in percent."""
    return 0 if x is None else round(100 * x, 1)


def marked(label: str, pred: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Label and prediction as runs of (class, text) for the edit-distance alignment's differences: class
    "s", "d" or "i" for substituted, missing and extra characters, "" for matching ones."""
    lab, prd = [], []
    for op, a, b in align(label, pred):
        cls = "" if op == "=" else op
        if a:
            lab.append((cls, a))
        if b:
            prd.append((cls, b))

    def runs(chars):
        return [(cls, "".join(c for _, c in group)) for cls, group in groupby(chars, key=lambda x: x[0])]

    return runs(lab), runs(prd)


@functools.cache
def environment() -> jinja2.Environment:
    """The report's Jinja2 environment: autoescape on, and a missing metric is an error, not a blank."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("ocr_core", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             extensions=["jinja2.ext.do"])
    env.filters.update(pct=percent, num=number, bar_width=bar_width, visible=visible)
    env.globals["marked"] = marked
    return env


def render_report(metrics: dict, thumbs: dict[str, str]) -> str:
    """The report page (inline CSS, images as data URIs); every text is HTML-escaped.

    Args:
        metrics: the metrics dict `ocr evaluate` prints (with its input description and `worst` list).
        thumbs: label_id -> PNG data URI of a worst mistake's image; cards without one say "no image".
    """
    return environment().get_template(TEMPLATE).render(runs=[metrics], names=run_names([metrics]),
                                                       thumbs=thumbs)


def run_names(runs: list[dict]) -> list[str]:
    """A short column name per evaluated table: its model(s), or its file name when models repeat."""
    names = [", ".join(m["models"]) or posixpath.basename(m["predictions"].rstrip("/")) for m in runs]
    if len(set(names)) < len(names):
        names = [posixpath.basename(m["predictions"].rstrip("/")) or m["predictions"] for m in runs]
    if len(set(names)) < len(names):
        names = [m["predictions"] for m in runs]
    return names


def render_comparison(runs: list[dict], thumbs: dict[str, str]) -> str:
    """One page comparing models on the same labels: summary and accuracy by label length as one table with a
    column per model, calibration, worst mistakes and confusions side by side.

    Args:
        runs: the metrics dict of each predictions table, in the order given.
        thumbs: label_id -> PNG data URI, for the worst mistakes of every run.
    """
    return environment().get_template(TEMPLATE).render(runs=runs, names=run_names(runs), thumbs=thumbs)


THUMB_HEIGHT = 48
THUMB_MAX_WIDTH = 480


def thumbnail_png(gray: np.ndarray) -> bytes:
    """A uint8/float gray image scaled to THUMB_HEIGHT (width capped at THUMB_MAX_WIDTH), PNG-encoded."""
    h, w = gray.shape[:2]
    s = min(THUMB_HEIGHT / h, THUMB_MAX_WIDTH / w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    img = cv2.resize(np.rint(np.clip(gray, 0, 255)).astype(np.uint8), size,
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".png", img)
    return buf.tobytes() if ok else b""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
