"""Distinct package-like names (PyPI-style), generated deterministically, for lists of any size.

    python3 bench/synthetic_names.py N [--seed 0] > names.txt
    from synthetic_names import generate; generate(1000, seed=0) -> ['flask-orbit', 'mailsdk', ...]

A name is 1-4 parts joined by one separator ('-', '_' or nothing), sometimes followed by a
number of 2 or 3 digits: `django-rest-tools`, `pyzarelin`, `aws_lambda_utils`, `kerimo-client24`.
A part is one of three kinds:

- a common token of package names (py, django, flask, api, client, sdk, utils, ...);
- an English word of data/words.tsv (3-10 letters), drawn more often the more frequent it is
  (by the square root of its count, so that rare words still come up);
- an invented word from an order-2 character Markov model of data/names.txt (3-9 letters):
  brand-like names such as `zarelin`.

Names are lowercase, only `a-z 0-9 - _`, 12-16 characters on average and at most ~60, one per line,
without counts. Candidates are drawn in vectorised rounds, duplicates dropped (the first draw of a
name wins), until N distinct names are found, so a seed gives the same list on any machine with
the same NumPy; 1,000,000 names take a few seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"
TOKENS = ("py", "python", "django", "flask", "api", "client", "sdk", "utils", "tools", "lib", "core", "cli", "web",
          "http", "json", "async", "aws", "azure", "google", "cloud", "data", "db", "sql", "test", "pytest", "plugin",
          "ext", "contrib", "rest", "auth", "kit", "io", "ml", "ai", "torch", "tf", "pandas", "numpy", "redis", "server")
KINDS = (0.3, 0.45, 0.25)  # shares of the part kinds: token, English word, invented word
PARTS = (0.3, 0.42, 0.2, 0.08)  # shares of names of 1, 2, 3 and 4 parts
SEPARATORS, SEPARATOR_SHARES = ("-", "_", ""), (0.5, 0.15, 0.35)
DIGITS_SHARE = 0.08  # names ending in a number of 2 or 3 digits
INVENTED = 60_000  # invented words drawn for the pool (fewer remain, once repeats are dropped)
LETTERS = "abcdefghijklmnopqrstuvwxyz"
EDGE = len(LETTERS)  # the Markov model's start and end symbol


def english_words() -> tuple[np.ndarray, np.ndarray]:
    """The a-z words of 3-10 letters of data/words.tsv (W,) and their drawing weights (W,), summing to 1."""
    words, counts = [], []
    for line in (DATA / "words.tsv").read_text().splitlines():
        word, count = line.split("\t")
        if 3 <= len(word) <= 10 and word.isascii() and word.isalpha():
            words.append(word)
            counts.append(float(count))
    weights = np.sqrt(np.array(counts))  # (W,)
    return np.array(words), weights / weights.sum()


def markov_table(names: list[str]) -> np.ndarray:
    """Cumulative next-letter probabilities (E*E, E+1) of an order-2 character model, E = 27 symbols
    (a-z and EDGE); row a*E+b is the context (a, b), EDGE standing for the start (and the end as a column)."""
    E = EDGE + 1
    counts = np.full((E * E, E), 0.01)  # (E*E, E), smoothed so that every context can go on
    for name in names:
        symbols = [EDGE, EDGE, *(LETTERS.index(c) for c in name), EDGE]
        for a, b, c in zip(symbols, symbols[1:], symbols[2:]):
            counts[a * E + b, c] += 1
    return np.cumsum(counts / counts.sum(axis=1, keepdims=True), axis=1)  # (E*E, E)


def invented_words(n: int, rng: np.random.Generator, min_len: int = 3, max_len: int = 9) -> np.ndarray:
    """Up to n distinct invented words (M,) of min_len-max_len letters from the Markov model of data/names.txt."""
    names = [w for w in (DATA / "names.txt").read_text().split() if w.isascii() and w.isalpha()]
    table = markov_table(names)  # (E*E, E)
    E = EDGE + 1
    letters = np.full((n, max_len + 1), EDGE)  # (n, max_len + 1), EDGE after a word's end
    before, last = np.full(n, EDGE), np.full(n, EDGE)  # (n,) the context of each word
    alive = np.ones(n, dtype=bool)  # (n,) not ended yet
    for t in range(max_len + 1):
        # inverse CDF: the first symbol whose cumulative probability exceeds a uniform draw
        u = rng.random(n)[:, None]  # (n, 1)
        nxt = np.minimum((table[before * E + last] < u).sum(axis=1), EDGE)  # (n,)
        nxt[~alive] = EDGE
        letters[:, t] = nxt
        alive &= nxt != EDGE
        before, last = last, nxt
    lengths = (letters != EDGE).argmin(axis=1)  # (n,) letters before the first EDGE
    alphabet = np.array(list(LETTERS + " "))
    words = np.char.strip(np.array(["".join(row) for row in alphabet[letters]]))
    keep = (lengths >= min_len) & (lengths <= max_len)  # a word cut at max_len letters has no end: dropped
    return np.array(list(dict.fromkeys(words[keep].tolist())))


def part_pool(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every part a name can be made of (P,) and its probability (P,): tokens, English words,
    invented words, each kind with its share of KINDS."""
    tokens = np.array(TOKENS)
    english, english_weights = english_words()
    invented = invented_words(INVENTED, rng)
    pool = np.concatenate([tokens, english, invented])  # (P,)
    weights = np.concatenate([np.full(len(tokens), KINDS[0] / len(tokens)), KINDS[1] * english_weights,
                              np.full(len(invented), KINDS[2] / len(invented))])  # (P,)
    return pool, weights / weights.sum()


def candidates(m: int, pool: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """m names (m,), repeats possible: each of 1-4 parts drawn from the pool, joined by one separator."""
    n_parts = rng.choice(len(PARTS), size=m, p=PARTS) + 1  # (m,)
    parts = pool[rng.choice(len(pool), size=(m, len(PARTS)), p=weights)]  # (m, 4)
    separator = np.array(SEPARATORS)[rng.choice(len(SEPARATORS), size=m, p=SEPARATOR_SHARES)]  # (m,)
    names = parts[:, 0].astype(object)  # (m,) object: str concatenation without a fixed width
    for j in range(1, len(PARTS)):
        names = np.where(n_parts > j, names + separator + parts[:, j], names)  # (m,)
    digits = rng.random(m) < DIGITS_SHARE  # (m,)
    numbers = rng.integers(10, 1000, size=m).astype(str).astype(object)  # (m,) 2 or 3 digits
    return np.where(digits, names + numbers, names)  # (m,)


def generate(n: int, seed: int = 0) -> list[str]:
    """n distinct package-like names, the same for the same (n, seed); a longer list with the
    same seed does not start with a shorter one (the rounds are sized by n)."""
    rng = np.random.default_rng(seed)
    pool, weights = part_pool(rng)
    found: dict[str, None] = {}
    while len(found) < n:
        wanted = n - len(found)
        found.update(dict.fromkeys(candidates(int(1.2 * wanted) + 100, pool, weights, rng).tolist()))
    return list(found)[:n]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="how many names")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.stdout.write("".join(name + "\n" for name in generate(args.n, args.seed)))


if __name__ == "__main__":
    main()
