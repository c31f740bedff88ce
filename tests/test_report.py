"""`ocr_core.report`: the Jinja2 page escapes every text it shows, marks alignments, names missing metrics."""
import html
import re

import jinja2
import pytest

from ocr_core import metrics, report

HOSTILE = '<script>alert("x")</script>'


def page_metrics(pairs: list[tuple[str, str]], **described) -> dict:
    """A metrics dict shaped as `ocr evaluate` prints it, from (label, prediction) pairs."""
    rows = [{"id": f"r{i}", "label_id": f"r{i}", "source": f"/data/{label}.png", "label": label, "text": pred,
             "confidence": 0.5} for i, (label, pred) in enumerate(pairs)]
    m = {"predictions": "/p", "labels": None, "label_source": "table", "split": None, "models": ["demo@m"],
         "rows": len(rows), "label_rejects": 0, **metrics.summarize(pairs),
         "by_length": metrics.by_length(pairs), "by_length_group": metrics.by_length_group(pairs),
         "errors": {"count": 0, "by_reason": {}}, "unlabelled": 0,
         "missing_predictions": 0, "mean_confidence_right": None, "mean_confidence_wrong": 0.5,
         "calibration": metrics.calibration([(0.5, a == b) for a, b in pairs]),
         "expected_calibration_error": None, "confusions": metrics.confusions(pairs),
         "worst": [{**w, "prediction": w["text"]} for w in metrics.worst_mistakes(rows, 10)]}
    m.update(described)
    return m


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_every_text_is_escaped():
    m = page_metrics([(HOSTILE, "<b>"), ("it's", "its"), ("a&b", "a&amp;b")],
                     predictions=f"/tmp/{HOSTILE}", labels="/l/<i>.tsv", label_source="manifest",
                     split="<u>", models=["<em>model</em>"], errors={"count": 1, "by_reason": {"<s>": 1}})
    page = report.render_report(m, {"r0": 'data:image/png;base64,AAAA" onerror="alert(1)'})
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</body></html>")
    for markup in ("<script", "<b>", "<i>", "<u>", "<em>", "<s>", '" onerror'):
        assert markup not in page
    shown = text_of(page)
    for text in (f"Predictions/tmp/{HOSTILE}", "Labels/l/<i>.tsv (a labels manifest, split <u>)",
                 "Model<em>model</em>", "<s>", "a&amp;b"):
        assert text in shown
    alts = [html.unescape(a) for a in re.findall(r'alt="([^"]*)"', page)]
    assert alts == [HOSTILE]  # the only card with an image; the others say "no image"
    assert page.count('<div class="noimg">no image</div>') == 2


def test_alignment_marks_and_visible_characters():
    lab, prd = report.marked("Cloud 9", "C1oud9")
    assert lab == [("", "C"), ("s", "l"), ("", "oud"), ("d", " "), ("", "9")]
    assert prd == [("", "C"), ("s", "1"), ("", "oud9")]
    page = report.render_report(page_metrics([("Cloud 9", "C1oud9")]), {})
    assert '<span class="mono">C<mark class="s">l</mark>oud<mark class="d"> </mark>9</span>' in page
    assert '<td><span class="mono">␣</span></td>' in page  # the deleted space, spelled out
    assert (report.visible("\t"), report.percent(None), report.number(0.12345, 2)) == ("U+0009", "–", "0.12")


def test_empty_sections_say_so():
    page = report.render_report(page_metrics([]), {})
    for note in ("No words.", "No confidences.", "No mistakes to show.", "No substitutions.", "No deletions.",
                 "No insertions."):
        assert f"<p>{note}</p>" in page


def test_a_missing_metric_is_an_error_not_a_blank():
    m = page_metrics([("a", "b")])
    del m["cer"]
    with pytest.raises(jinja2.UndefinedError, match="cer"):
        report.render_report(m, {})
