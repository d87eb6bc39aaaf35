"""The case a completion is shown in: the case typed, or the lexicon's written form.

A model trained with case folding reads "REC", "Rec" and "rec" alike; its completions are shown
in the case typed (REC gives RECORD, Rec gives Record), unless the lexicon writes the word with a
case of its own (Paris). A model trained with accent folding reads "café" and "cafe" alike; a
lexicon word is shown with the accents the lexicon writes (cafe gives Café Royal, creme gives
crème brûlée, CREME gives CRÈME BRÛLÉE). A prefix corrected for typing errors is shown in the
case typed too.
"""

from __future__ import annotations

import numpy as np

from rnnac.storage.folding import fold
from rnnac.storage.lexicon import Lexicon


def as_typed(typed: str, folded: str, word: str, written: str | None, lowercase: bool) -> str:
    """A completion as it is shown. `word` is what the search found (it starts with `folded`, the
    prefix as the model reads it); `typed` is the prefix as typed, in NFC; `written` the word as
    the lexicon writes it, in NFC (None if it is not a lexicon word); `lowercase` the model's
    case folding. A written form other than the word wins: as it is when it has a case of its
    own (Paris, Café Royal) or the model keeps case, else (accents alone: crème) in the case typed
    (case_like). Otherwise the prefix as typed, then the rest in capitals if the model folds case
    and the prefix is in capitals (two or more of them), as found if not.

    as_typed("REC", "rec", "record", None, True) -> "RECORD"; as_typed("Rec", "rec", "record", None, True) -> "Record"
    as_typed("cafe", "cafe", "cafe royal", "Café Royal", True) -> "Café Royal"
    """
    if written is not None and written != word:
        return written if not lowercase or written.lower() != written else case_like(typed, written)
    rest = word[len(folded):]
    if not lowercase:  # the case typed is the word's own: only its accents may be folded away
        return fold(typed, False) + rest
    return typed + (rest.upper() if shouting(typed) else rest)


def shouting(typed: str) -> bool:
    """Typed in capitals: two or more of them, and no lower-case letter."""
    return typed.isupper() and sum(map(str.isupper, typed)) >= 2


def case_like(typed: str, corrected: str) -> str:
    """A corrected prefix in the case of what was typed: capitals if typed in capitals (two or
    more), a capital first letter if typed so."""
    if shouting(typed):
        return corrected.upper()
    if typed[:1].isupper():
        return corrected[:1].upper() + corrected[1:]
    return corrected


def written_forms(lexicon: Lexicon, trie: np.ndarray, known: np.ndarray) -> list[str | None]:
    """The lexicon's written form (in NFC) of the word ending at each lexicon node trie (M,),
    None where it is no lexicon word (known (M,) False)."""
    index = np.where(known, lexicon.display(np.where(known, trie, 0)), -1).tolist()  # (M,) into lexicon.written
    return [fold(lexicon.written[i], False) if i >= 0 else None for i in index]
