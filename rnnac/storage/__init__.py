"""The word list and the files on disk: what is read and written, and how safely.

`listformats` reads the lines of a user's list (lines, TSV, CSV, `uniq -c`, `history`),
`wordlist` merges, splits and samples it, `lexicon` is the list a checkpoint carries and the
trie built from it, `checkpoint` saves, checks and loads models, `npz` reads an archive with
bounded inflation, `atomic` writes a file whole or not at all, and `shipped` finds the configs
and word lists rnnac ships (a list by name: `words`). It depends on the engine (vocabularies,
parameter names) only.
"""
