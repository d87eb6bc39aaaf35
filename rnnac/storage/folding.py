"""Folding: text as a model reads it. Every string the model sees (training words, the lexicon,
typed prefixes, scored words) goes through `fold`, the one place where text is folded.

Text is put in Unicode NFC, then lowercased if the model was trained so (data.lowercase), then
stripped of its accents if it was trained so (data.fold_accents): decomposed (NFD), its
combining marks dropped (unicodedata.combining), composed again (NFC), and the Latin letters
that do not decompose written as their base letters: ø -> o, ł -> l, ß -> ss, æ -> ae,
œ -> oe, đ -> d (and capitals: Ø -> O, Ł -> L, Æ -> AE, Œ -> OE, Đ -> D, ẞ -> SS).

    fold("Crème Brûlée", Folding(lowercase=True, accents=True)) -> "creme brulee"

Accent folding is meant for lists in Latin script: combining marks go whatever the script (a
Devanagari virama, a Japanese dakuten), so a list in other scripts trains with it off.
Completions still show the list's own spelling (rnnac.inference.cases).

Performance notes: ASCII text has no accents, and a text's distinct characters are few, so the
marks to drop are found among them (a set) and removed by one regular expression.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Letters that do not decompose into a base letter and a mark, written as their base letters.
LETTERS = {"ø": "o", "ł": "l", "ß": "ss", "æ": "ae", "œ": "oe", "đ": "d",
           "Ø": "O", "Ł": "L", "Æ": "AE", "Œ": "OE", "Đ": "D", "ẞ": "SS"}
_LETTER_TABLE = str.maketrans(LETTERS)


@dataclass(frozen=True)
class Folding:
    """How a model reads text: lowercased or not, accents folded or not (fold).

    Folding.of(True) -> Folding(lowercase=True, accents=False): a bool is the case folding alone,
    as a model trained before accent folding existed reads text.
    """

    lowercase: bool = True  # str.lower (data.lowercase)
    accents: bool = False  # drop accents (data.fold_accents): café and cafe read alike

    @classmethod
    def of(cls, folding: Folding | bool) -> Folding:
        """`folding` itself, or for a bool the case folding alone (accents kept)."""
        return folding if isinstance(folding, Folding) else cls(lowercase=bool(folding))

    @property
    def case(self) -> Folding:
        """This folding without the accents: how a typed prefix and a written form are compared
        when a typed accent narrows the words (rnnac.inference.lexicons.written_part)."""
        return Folding(self.lowercase)

    def leaves(self, facts: dict) -> bool:
        """Whether this folding leaves the words alone, by facts a checkpoint states about them
        (meta lexicon: nfc, lower, unaccented; rnnac.storage.lexicon.text_facts); False when
        the facts do not say."""
        return bool(facts.get("nfc") and (not self.lowercase or facts.get("lower"))
                    and (not self.accents or facts.get("unaccented")))


def fold(text: str, folding: Folding | bool) -> str:
    """`text` as the model reads it: in Unicode NFC, lowercased and its accents dropped as
    `folding` says (a bool: lowercased or not, accents kept). Neither step acts across a newline:
    words joined by newlines fold as each word would.

    fold("Straße", Folding(True, True)) -> "strasse"; fold("Straße", True) -> "straße"
    """
    folding = Folding.of(folding)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if folding.lowercase:
        text = text.lower()
    if folding.accents and not text.isascii():
        text = _drop_accents(text)
    return text


def _drop_accents(text: str) -> str:
    """The NFC `text` without its combining marks (decomposed, dropped, composed again) and with
    the letters of LETTERS replaced."""
    decomposed = unicodedata.normalize("NFD", text)
    marks = [ch for ch in set(decomposed) if unicodedata.combining(ch)]
    if marks:
        text = unicodedata.normalize("NFC", re.sub(f"[{''.join(map(re.escape, marks))}]", "", decomposed))
    return text.translate(_LETTER_TABLE) if not set(LETTERS).isdisjoint(text) else text
