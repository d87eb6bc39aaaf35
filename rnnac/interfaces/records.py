"""The records rnnac prints (`--format json`) and serves (`rnnac serve`): one prefix's
completions or one word's score as a dict ready for json.dumps. README: Output format."""

from __future__ import annotations

import math

VERSION = 1


def completion_record(result) -> dict:
    """A completer.Result: its completions (each Completion's fields), or its error."""
    if result.error:
        return {"version": VERSION, "prefix": result.prefix, "error": result.error}
    words = [c._asdict() for c in result.completions]
    return {"version": VERSION, "prefix": result.prefix, "completions": words, "truncated": result.truncated}


def score_record(score, per_char: bool = False) -> dict:
    """A score.WordScore: nats per character, log-prob and prob, with per_char each character's
    surprisal then the end's (char ""), or its error."""
    if score.error:
        return {"version": VERSION, "word": score.word, "error": score.error}
    record = {"version": VERSION, "word": score.word, "nats_per_char": score.nats_per_char, "logprob": score.logprob,
              "prob": math.exp(score.logprob)}
    if per_char:
        record["chars"] = [{"char": ch, "nats": nats} for ch, nats in zip([*score.chars, ""], score.surprisal)]
    return record
