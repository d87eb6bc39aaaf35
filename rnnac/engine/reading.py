"""Reading strings with the model: their hidden states and next-token log-probs, many at once.

Strings are the nodes of a forest, parents before children: a node with parent -1 is the empty
string, read as the word boundary from the initial state; any other node is its parent's string
and one more token. Nodes of one depth are read together, one `RNN.step` call per depth. A
list of strings is a forest of chains (`read_strings`); a trie of candidate prefixes is one
tree (rnnac.inference.typos.CandidateNodes).

Shapes: n nodes, G strings, H hidden, K vocabulary (id 0 is the word boundary).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnac.engine.model import RNN
from rnnac.engine.vocab import BOUNDARY


class Reading(NamedTuple):
    """What the model read: per node, or per string for read_strings."""

    a: np.ndarray  # (n, H) hidden state after the node's last token
    logp: np.ndarray  # (n, K) log-probs of the next token
    prefix_lp: np.ndarray  # (n,) float64 log P_rnn(s*): the sum of the log y^ of the node's tokens


def read_tree(model: RNN, parent: np.ndarray, token: np.ndarray, levels: list[np.ndarray],
              skip: np.ndarray | None = None) -> Reading:
    """Every node's Reading. parent, token (n,); levels[d] the nodes of depth d (levels[0] the
    empty strings). The nodes of `skip` (n,) bool (those without children: leaves) get their
    prefix_lp only, their state and log-probs left unset."""
    n = len(parent)
    a = np.empty((n, model.hidden_size), dtype=model.dtype)
    logp = np.empty((n, model.vocab_size), dtype=model.dtype)
    prefix_lp = np.zeros(n)
    top = levels[0]
    a[top], logp[top] = model.step(model.initial_state(len(top)), np.full(len(top), BOUNDARY))
    for level in levels[1:]:
        above, ids = parent[level], token[level]
        prefix_lp[level] = prefix_lp[above] + logp[above, ids]
        if skip is not None:
            read = ~skip[level]
            level, above, ids = level[read], above[read], ids[read]
        a[level], logp[level] = model.step(a[above], ids)
    return Reading(a, logp, prefix_lp)


def read_strings(model: RNN, encoded: list[list[int]]) -> Reading:
    """Each string's Reading (G rows) after [boundary, ids...]: a forest of chains, read depth by depth."""
    lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)  # (G,)
    G, T = len(encoded), int(lengths.max(initial=0))
    ids = np.zeros((G, T), dtype=np.int64)  # (G, T), padded
    for i, row in enumerate(encoded):
        ids[i, : len(row)] = row
    # Nodes numbered depth by depth: depth d holds the strings of length >= d, in order.
    rows = [np.flatnonzero(lengths >= d) for d in range(T + 1)]  # [d] (G_d,) the strings reaching depth d
    start = np.cumsum([0] + [len(r) for r in rows])  # (T + 2,) the first node of each depth
    levels = [np.arange(start[d], start[d + 1]) for d in range(T + 1)]
    parent, token = np.full(start[-1], -1, dtype=np.int64), np.zeros(start[-1], dtype=np.int64)  # (n,) each
    node = levels[0].copy()  # (G,) each string's node at the depth reached so far: at the end, its last
    for d in range(1, T + 1):
        parent[levels[d]] = node[rows[d]]
        token[levels[d]] = ids[rows[d], d - 1]
        node[rows[d]] = levels[d]
    reading = read_tree(model, parent, token, levels)
    return Reading(reading.a[node], reading.logp[node], reading.prefix_lp[node])
