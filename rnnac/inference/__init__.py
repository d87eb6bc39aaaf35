"""Inference: from a trained model and its lexicon to completions, scores and samples.

`search` is the exact best-first (and beam) search below a prefix, `completer` the
`Completer` that prepares prefixes and builds the answers, `typos` the typing channel and
the candidate prefixes within N edits, `wordstarts` the lexicon entries with a word starting
as typed (word-start matching), `mixture` the lexicon's weight lambda and the RNN's
word log-probabilities, `score` whole-word scores, `sampling` drawing new words. It reads
models through `rnnac.storage` and runs them with `rnnac.engine`.
"""
