"""`ocr_core.charset`: text <-> class ids and the JSON form round-trip."""
from images import WORDS

from ocr_core.charset import Charset


def test_charset_round_trip():
    cs = Charset()
    for text in WORDS:
        ids = cs.encode(text)
        assert all(1 <= i < cs.num_classes for i in ids)
        assert cs.decode(ids) == text
    assert Charset.from_json(cs.to_json()) == cs


def test_labels_are_normalised_to_nfc():
    nfd, nfc = "cafe\u0301", "caf\u00e9"
    assert Charset.normalize(nfd) == nfc and Charset.normalize(nfc) == nfc
    cs = Charset("acef\u00e9")
    assert cs.unknown(nfd) == "\u0301" and cs.encode(Charset.normalize(nfd)) == cs.encode(nfc)
