"""Typing errors: a noisy channel over the typed prefix, and the prefixes it may have meant.

A user who means the prefix s (the first characters of the word they want) types t. The channel
scores an edit path from s to t as a product of probabilities, one factor per operation:

    an intended character c typed right        p_ok = 1 - p_sub - p_del - p_ins - p_trans
    c typed as another character d             p_sub q(d | c)
    c left out                                 p_del
    two intended characters typed swapped      p_trans (for both)
    an extra character d typed                 p_ins u(d)

q(d | c) spreads a substitution over the other characters: evenly, or (keyboard "qwerty") with
ADJACENT_SHARE of it on the keys next to c's. u(d) is even over the characters. The characters d
typed may lie outside the model's vocabulary: such a character is only ever a substitution or an
extra character. P(t | s) is the probability of the most probable path with at most E edits
(the typed prefix only: a path ends on a typed character, so that leaving characters out at the
end is completion, not an error; s = t is the one path with no edit).

`candidates` finds every intended prefix s within E edits of t with its P(t | s), as a trie of
the strings that can still lead to one (the states of a Levenshtein automaton, with
probabilities): a dynamic program over (typed position j, edits e), level by level, vectorised
over a level's nodes and every next character. complete.py reads the trie's nodes with the
model and searches the words below each candidate (rnnac.inference.search explains how scores combine).

Shapes: n trie nodes in a level, K - 1 characters (token ids 1..K-1; id K is a typed
character outside the vocabulary), J = m + 1 positions in the typed prefix of m characters,
X = E + 1 edit counts for at most E = max_edits edits.

Performance notes: the nodes with no edit left grow apart (_grow_spent), by matches and swaps
only, without the dynamic program over every next character.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from rnnac.engine.model import RNN
from rnnac.engine.reading import Reading, read_tree
from rnnac.inference.search import spell_rows
from rnnac.storage.lexicon import Lexicon

KEYBOARDS = ("qwerty", "none")
ADJACENT_SHARE = 0.6  # of a substitution, the share that lands on a key next to the intended one
MAX_EDITS = 3  # the candidates grow about as m^E K^E; MAX_NODES bounds them whatever E
MAX_NODES = 50_000  # candidate trie nodes for one typed prefix: 1 edit of 60 characters, 2 of 4, 3 of 2
MAX_CELLS = 20_000_000  # entries of one level's dynamic program (n, K-1, J, X), 160 MB of float64
_QWERTY_ROWS = ("1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./")
_QWERTY_SHIFT = (0.0, 0.5, 0.75, 1.25)  # each row's offset to the right, in keys
_NEIGHBOUR_DISTANCE = 1.3  # keys this close (centre to centre, in keys) are neighbours: 6 for a letter


@dataclass(frozen=True)
class Channel:
    """The probabilities of the four kinds of typing error, per intended character (an extra
    character: per typed one), and the keyboard that weighs substitutions.

    The defaults, an error in 4 % of characters, 40 % of them substitutions, are a judgement, not
    a measurement: typing studies report per-keystroke error rates from about 1 % (errors left
    in, physical keyboards) to several percent (errors counted as made, or phones). They keep
    clean prefixes' completions within a point of those without typos on the typo benchmark
    (README). Channel.parse(["0.08"]) doubles them all;
    Channel.parse(["sub=0.02", "trans=0.001"]) sets two of them.
    """

    sub: float = 0.016
    ins: float = 0.008
    delete: float = 0.008
    trans: float = 0.008
    keyboard: str = "qwerty"

    KINDS = {"sub": "sub", "ins": "ins", "del": "delete", "trans": "trans"}  # as --edit-prob names them

    def __post_init__(self):
        rates = [self.sub, self.ins, self.delete, self.trans]
        if not all(0.0 <= p < 1.0 for p in rates) or sum(rates) >= 1.0:  # NaN fails too
            raise ValueError(f"edit probabilities must be in [0, 1) and sum below 1, got {self._spec()}")
        if self.keyboard not in KEYBOARDS:
            raise ValueError(f"keyboard must be one of {', '.join(KEYBOARDS)}, got {self.keyboard!r}")

    @classmethod
    def parse(cls, specs: Sequence[str], keyboard: str = "qwerty") -> Channel:
        """A channel from --edit-prob values: a number sets the total error rate, every kind in
        the defaults' shares; KIND=P (KIND one of sub, ins, del, trans) sets one kind. Later
        values win."""
        defaults = {f.name: getattr(cls, f.name) for f in fields(cls) if f.name != "keyboard"}
        values = dict(defaults)
        for spec in specs:
            kind, _, text = spec.rpartition("=")
            try:
                p = float(text)
            except ValueError:
                raise ValueError(f"--edit-prob {spec!r}: expected a probability or KIND=P") from None
            if not kind:
                values = {name: p * share / sum(defaults.values()) for name, share in defaults.items()}
            elif kind in cls.KINDS:
                values[cls.KINDS[kind]] = p
            else:
                raise ValueError(f"--edit-prob {spec!r}: KIND is one of {', '.join(cls.KINDS)}")
        return cls(**values, keyboard=keyboard)

    @property
    def ok(self) -> float:
        return 1.0 - self.sub - self.ins - self.delete - self.trans

    def _spec(self) -> str:
        return ", ".join(f"{kind}={getattr(self, name)}" for kind, name in self.KINDS.items())

    def costs(self, chars: Sequence[str]) -> Costs:
        """The channel's log-probabilities for a vocabulary's characters (token ids 1..K-1)."""
        n_chars = len(chars)
        with np.errstate(divide="ignore"):  # log 0 = -inf: that kind of error never happens
            log = lambda p: float(np.log(p))  # noqa: E731
            q = _substitutions(chars, self.keyboard)  # (K + 1, K + 1)
            sub = np.log(self.sub) + np.log(q)
            ins = np.full(n_chars + 2, np.log(self.ins) - math.log(max(n_chars, 1)))  # (K + 1,) u(d) = 1 / (K - 1)
            ins[0] = -np.inf  # the boundary is never typed
            return Costs(log(self.ok), sub, ins, log(self.delete), log(self.trans))


class Costs(NamedTuple):
    """A channel's log-probabilities over token ids: 0 the boundary (never typed), 1..K-1 the
    vocabulary's characters, K any other typed character."""

    ok: float  # log p_ok
    sub: np.ndarray  # (K + 1, K + 1) [c, d]: log p_sub q(d | c), -inf for d = c
    ins: np.ndarray  # (K + 1,) [d]: log p_ins u(d)
    delete: float  # log p_del
    trans: float  # log p_trans


def _substitutions(chars: Sequence[str], keyboard: str) -> np.ndarray:
    """q(d | c) (K + 1, K + 1) over token ids (row and column 0, the boundary, are 0; id K
    stands for every character outside the vocabulary and gets a non-neighbour's share)."""
    n_chars = len(chars)
    q = np.zeros((n_chars + 2, n_chars + 2))
    if n_chars < 2:
        q[1:, n_chars + 1] = 1.0  # one character: any substitution types something outside the vocabulary
        return q
    adjacent = _adjacent(chars) if keyboard == "qwerty" else np.zeros((n_chars, n_chars), dtype=bool)  # (K-1, K-1)
    for c in range(n_chars):
        near = int(adjacent[c].sum())
        far = n_chars - 1 - near  # the other characters of the vocabulary not next to c
        if near and far:
            q[c + 1, 1 : n_chars + 1] = np.where(adjacent[c], ADJACENT_SHARE / near, (1 - ADJACENT_SHARE) / far)
            q[c + 1, n_chars + 1] = (1 - ADJACENT_SHARE) / far
        else:
            q[c + 1, 1:] = 1.0 / (n_chars - 1)
        q[c + 1, c + 1] = 0.0
    return q


def _adjacent(chars: Sequence[str]) -> np.ndarray:
    """(K-1, K-1) whether two characters sit on neighbouring keys of a QWERTY keyboard (letters
    and their capitals share a key; characters off the keyboard have no neighbours)."""
    where = {key: (row, col + _QWERTY_SHIFT[row]) for row, keys in enumerate(_QWERTY_ROWS) for col, key in enumerate(keys)}
    position = [where.get(ch.lower()) for ch in chars]
    n_chars = len(chars)
    adjacent = np.zeros((n_chars, n_chars), dtype=bool)
    for i, p in enumerate(position):
        for j, r in enumerate(position):
            if i != j and p is not None and r is not None:
                adjacent[i, j] = math.dist(p, r) <= _NEIGHBOUR_DISTANCE
    return adjacent


class TooManyCandidates(Exception):
    """A typed prefix has more candidate prefixes than MAX_NODES within its edits."""


class Candidates(NamedTuple):
    """The trie of intended prefixes for one typed prefix, parents before children; node 0 is the
    empty string. A node is a candidate where `channel` is finite."""

    parent: np.ndarray  # (n,) int32, -1 at node 0
    token: np.ndarray  # (n,) int32 the node's last character, 0 at node 0
    depth: np.ndarray  # (n,) int32 its length
    channel: np.ndarray  # (n,) float64 log P(t | s) along the best path, -inf off the candidates
    edits: np.ndarray  # (n,) int32 edits on that path

    def first(self) -> np.ndarray:
        """The candidates below no other candidate (n,) bool: every word below a candidate lies
        below one of these."""
        hit = self.channel > -np.inf
        above = np.zeros(len(self.parent), dtype=bool)  # a candidate above the node
        for d in range(1, int(self.depth.max(initial=0)) + 1):
            level = np.flatnonzero(self.depth == d)
            above[level] = above[self.parent[level]] | hit[self.parent[level]]
        return hit & ~above


def spell_all(parent: np.ndarray, token: np.ndarray, depth: np.ndarray, chars: np.ndarray) -> np.ndarray:
    """The string of every node (n,) of tries given parents first, as a numpy str array;
    chars (K,) maps token ids to characters ("" at 0)."""
    D = int(depth.max(initial=0))
    tokens = np.zeros((len(parent), max(D, 1)), dtype=np.int64)  # (n, D), 0 pads the end
    for d in range(1, D + 1):
        level = np.flatnonzero(depth == d)
        tokens[level] = tokens[parent[level]]
        tokens[level, d - 1] = token[level]
    table = np.array(chars, dtype="<U1")
    table[0] = "\0"
    return spell_rows(tokens, table)  # (n,)


def candidates(typed: Sequence[int], costs: Costs, max_edits: int, max_length: int) -> Candidates:
    """The intended prefixes s within max_edits edits of the typed token ids (1..K, K outside
    the vocabulary), at most max_length characters long, with log P(t | s) of the best path.

    D[j, e] is a node's best log-probability of having typed t[:j] with e edits; a child s + c
    takes it by a match or substitution of c from D[j-1], a transposition (s's last character
    and c typed swapped) from the parent's D[j-2], or c left out from D[j, e-1]; then extra
    typed characters extend any of these. A candidate's value is D[m] over paths whose last
    operation types a character (not a left-out one).
    """
    t = np.asarray(typed, dtype=np.int64)  # (m,)
    m, X, n_chars = len(t), max_edits + 1, costs.sub.shape[0] - 2
    J = m + 1
    match, sub, swap, runs = _typed_tables(t, costs, X)

    D = np.full((1, J, X), -np.inf)  # the empty string: every typed character so far extra
    for j in range(min(m, max_edits) + 1):
        D[0, j, j] = runs[j][0]
    root_channel = D[0, m].max() if m else 0.0  # m > 0: reached by extra characters only
    parents, tokens, depths = [np.array([-1])], [np.array([0])], [np.array([0])]
    channel, edits = [np.array([root_channel])], [np.array([int(np.argmax(D[0, m])) if m else 0])]
    level, D_parent, last = np.array([0]), np.full_like(D, -np.inf), np.array([0])
    depth, n = 0, 1
    while len(level) and depth < max_length:
        if n > MAX_NODES or len(level) * n_chars * J * X > MAX_CELLS:
            raise TooManyCandidates(f"more than {MAX_NODES:,} candidate prefixes")
        # Apart: the nodes with an edit left, any of whose next characters may be an edit, and
        # the others, whose children match t[j] or swap two typed characters (_grow_spent).
        fresh = np.isfinite(D[:, :, :-1]).any(axis=(1, 2))  # (n,)
        f, sp = np.flatnonzero(fresh), np.flatnonzero(~fresh)
        grown, emit, i_f, c = _grow_fresh(D[f], D_parent[f], last[f], (match, sub, swap, runs), costs, m)
        i_s, token_s, D_s, emit_s = _grow_spent(D[sp], D_parent[sp], last[sp], t, n_chars, costs)
        i = np.concatenate([f[i_f], sp[i_s]])  # (n',) each child's parent in the level
        if not len(i):
            break
        depth += 1
        token = np.concatenate([c + 1, token_s])  # (n',)
        best = np.concatenate([emit[i_f, c], emit_s])  # (n', X)
        parents.append(level[i])
        tokens.append(token)
        depths.append(np.full(len(i), depth))
        channel.append(best.max(axis=1))
        edits.append(np.argmax(best, axis=1))  # the fewest edits among the best paths
        D, D_parent, last = np.concatenate([grown[i_f, c], D_s]), D[i], token
        level = np.arange(n, n + len(i))
        n += len(i)
    return Candidates(*(np.concatenate(parts).astype(dtype) for parts, dtype in
                        ((parents, np.int32), (tokens, np.int32), (depths, np.int32), (channel, np.float64), (edits, np.int32))))


def _typed_tables(t: np.ndarray, costs: Costs, X: int):
    """What the dynamic program needs of the typed token ids t (m,), by intended character c and
    typed position j: match (K-1, J) c is typed t[j-1]; sub (K-1, J) the cost of c typed as t[j-1],
    -inf where it is t[j-1]; swap (K-1, K, J) the intended (last, c) typed as (t[j-2], t[j-1]) =
    (c, last); runs[r] (J-r,) the cost of t[j-r:j] all typed extra, r < X."""
    m, n_chars = len(t), costs.sub.shape[0] - 2
    J = m + 1
    c_ids = np.arange(1, n_chars + 1)  # (K-1,)
    match = np.zeros((n_chars, J), dtype=bool)
    match[:, 1:] = c_ids[:, None] == t[None, :]  # [c, j]: c is typed t[j-1]
    sub = np.full((n_chars, J), -np.inf)
    sub[:, 1:] = costs.sub[c_ids][:, t]  # [c, j]: c typed as t[j-1], -inf where it is t[j-1]
    extra = costs.ins[t]  # (m,) each typed character's cost as an extra one
    runs = [np.array([extra[j - r : j].sum() for j in range(r, J)]) for r in range(X)]  # [r] (J-r,): t[j-r:j] all extra
    swap = np.zeros((n_chars, n_chars + 1, J), dtype=bool)  # [c, last, j]: (last, c) typed as (t[j-2], t[j-1]) = (c, last)
    if m >= 2:
        pairs = (c_ids[:, None, None] == t[None, None, :-1]) & (np.arange(n_chars + 1)[None, :, None] == t[None, None, 1:])
        swap[:, :, 2:] = pairs & (c_ids[:, None, None] != np.arange(n_chars + 1)[None, :, None])
    return match, sub, swap, runs


def _grow_fresh(D, D_parent, last, tables, costs: Costs, m: int):
    """The children of n nodes with an edit left, any of whose next characters may be an edit:
    as _grow, (n, K-1, J, X) and (n, K-1, X), and the live children's (node, character id - 1)."""
    if not len(D):  # past the typed characters' reach of an edit: no empty arrays to grow
        n_chars, J, X = tables[0].shape[0], D.shape[1], D.shape[2]
        none = np.empty(0, dtype=np.int64)
        return np.empty((0, n_chars, J, X)), np.empty((0, n_chars, X)), none, none
    grown, emit = _grow(D, D_parent, last, *tables, costs, m)  # (n, K-1, J, X), (n, K-1, X)
    live, c = np.nonzero(np.isfinite(grown).any(axis=(2, 3)))
    return grown, emit, live, c


def _grow(D, D_parent, last, match, sub, swap, runs, costs: Costs, m: int):
    """Every child of a level's n nodes: their D (n, K-1, J, X), and the values of the paths that
    end on a typed character at j = m (n, K-1, X)."""
    X = D.shape[2]
    shifted = np.full_like(D, -np.inf)  # [j, e] = D[j-1, e]
    shifted[:, 1:] = D[:, :-1]
    typed = np.where(match[None, :, :, None], shifted[:, None] + costs.ok, -np.inf)  # (n, K-1, J, X) matches
    typed[..., 1:] = np.maximum(typed[..., 1:], shifted[:, None, :, :-1] + sub[None, :, :, None])  # substitutions
    if m >= 2 and X > 1:
        swapped = swap[:, last, :].transpose(1, 0, 2)  # (n, K-1, J)
        from_parent = D_parent[:, None, :-2, :-1] + costs.trans  # (n, 1, J-2, X-1)
        typed[:, :, 2:, 1:] = np.maximum(typed[:, :, 2:, 1:], np.where(swapped[:, :, 2:, None], from_parent, -np.inf))
    base = typed.copy()
    if X > 1:  # c left out: D[j, e-1], whatever c is
        base[..., 1:] = np.maximum(base[..., 1:], (D[:, :, :-1] + costs.delete)[:, None])
    child = base.copy()
    emit = typed[:, :, m, :].copy()  # (n, K-1, X)
    for r in range(1, X):  # r extra characters typed last: base[j-r, e-r] + their cost
        child[:, :, r:, r:] = np.maximum(child[:, :, r:, r:], base[:, :, :-r, :-r] + runs[r][None, None, :, None])
        if m >= r:
            emit[:, :, r:] = np.maximum(emit[:, :, r:], base[:, :, m - r, :-r] + runs[r][m - r])
    return child, emit


def _grow_spent(D, D_parent, last, t, n_chars: int, costs: Costs):
    """The children of n nodes with no edit left (D finite at e = E only): each typed character
    t[j] after a finite D[j] is matched, and where the node's last character is t[j-1], the
    parent's D[j-2, e-1] may swap it with t[j-2]. (parent (n',), token (n',), D (n', J, X),
    emit (n', X)) of the live children; one child per token, holding the best of its entries."""
    n, J, X = D.shape
    m = J - 1
    i, j = np.nonzero(np.isfinite(D[:, :m, X - 1]))  # (M,) each: matches from D[j, E]
    parts = [(i, t[j], j + 1, np.full(len(i), X - 1), D[i, j, X - 1] + costs.ok)]
    if m >= 2 and X > 1:
        i, j, e = np.nonzero(np.isfinite(D_parent[:, : m - 1, : X - 1]))  # swaps from the parent's D[j, e]
        swap = (t[j + 1] == last[i]) & (t[j] != last[i])
        i, j, e = i[swap], j[swap], e[swap]
        parts.append((i, t[j], j + 2, e + 1, D_parent[i, j, e] + costs.trans))
    i, token, j, e, value = (np.concatenate(column) for column in zip(*parts))
    keep = token <= n_chars  # a character outside the vocabulary is never matched
    i, token, j, e, value = i[keep], token[keep], j[keep], e[keep], value[keep]
    order = np.lexsort((token, i))  # by (parent, token)
    i, token, j, e, value = i[order], token[order], j[order], e[order], value[order]
    first = np.ones(len(i), dtype=bool)
    first[1:] = (i[1:] != i[:-1]) | (token[1:] != token[:-1])
    child = np.full((int(first.sum()), J, X), -np.inf)
    np.maximum.at(child, (np.cumsum(first) - 1, j, e), value)  # entries of one child together
    return i[first], token[first].astype(np.int64), child, child[:, m, :].copy()  # a match or swap types last


class CandidateNodes:
    """The candidate tries of G typed prefixes as one array of nodes, parents before children
    within each; their states are read together, depth by depth."""

    def __init__(self, tries: list[Candidates]):
        sizes = [len(t.parent) for t in tries]
        start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)  # (G,) each trie's first node
        self.group = np.repeat(np.arange(len(tries), dtype=np.int32), sizes)  # (n,)
        self.parent = np.concatenate([np.where(t.parent >= 0, t.parent + s, -1) for t, s in zip(tries, start)])  # (n,)
        self.token, self.depth, self.channel, self.edits = (
            np.concatenate([getattr(t, name) for t in tries]) for name in ("token", "depth", "channel", "edits"))
        self.levels = [np.flatnonzero(self.depth == d) for d in range(int(self.depth.max(initial=0)) + 1)]

    def read(self, model: RNN, skip: np.ndarray | None = None) -> tuple[Reading, np.ndarray]:
        """(the Reading of the tries' distinct strings: hidden states (S, H), next-token log-probs
        (S, K), log P_rnn(s*) (S,); each node's row in it (n,)). A string in several tries
        (neighbouring typed prefixes share most of their short candidates) is read once. The
        strings of `skip` (n,) nodes only (no children: leaves) get their log P_rnn(s*) only,
        their state and log-probs left unset."""
        row, parent, token, levels = self._distinct_strings()
        skip_row = None
        if skip is not None:
            skip_row = np.ones(len(parent), dtype=bool)  # (S,)
            skip_row[row[~skip]] = False  # read where any node of the string needs it
        return read_tree(model, parent, token, levels, skip_row), row

    def _distinct_strings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        """The nodes' strings as one forest of S distinct strings, depth by depth: (each node's
        string (n,), the strings' parent (S,) and token (S,), levels[d] the strings of depth d)."""
        row = np.zeros(len(self.parent), dtype=np.int64)  # (n,) every trie's top is the empty string, row 0
        parents, tokens, levels, S = [np.array([-1])], [np.array([0])], [np.array([0])], 1
        base = int(self.token.max(initial=0)) + 1
        for level in self.levels[1:]:
            codes, row_of = distinct(row[self.parent[level]] * base + self.token[level])  # (S_d,), (n_d,)
            row[level] = S + row_of
            parents.append(codes // base)
            tokens.append(codes % base)
            levels.append(np.arange(S, S + len(codes)))
            S += len(codes)
        return row, np.concatenate(parents), np.concatenate(tokens), levels

    def leaves(self) -> np.ndarray:
        """(n,) the nodes without children."""
        leaf = np.ones(len(self.parent), dtype=bool)
        leaf[self.parent[self.parent >= 0]] = False
        return leaf

    def walk(self, lexicon: Lexicon | None) -> np.ndarray:
        """Every node's lexicon node (n,): -1 off it, 0 for all without a lexicon."""
        trie = np.zeros(len(self.parent), dtype=np.int32)
        if lexicon is not None:
            for level in self.levels[1:]:
                trie[level] = lexicon.child(trie[self.parent[level]], self.token[level])
        return trie

    def children(self, K: int) -> np.ndarray:
        """(n + 1, K) the child of each node by token, -1 for none; the last row is "off the tries"."""
        table = np.full((len(self.parent) + 1, K), -1, dtype=np.int32)
        below = np.flatnonzero(self.parent >= 0)
        table[self.parent[below], self.token[below]] = below
        return table

    def owned(self) -> np.ndarray:
        """(n,) whether a candidate scores its words itself: its channel beats every shorter
        candidate's on its path (on a tie the shorter one does)."""
        above = np.full(len(self.parent), -np.inf)  # (n,) best channel of a proper ancestor
        for level in self.levels[1:]:
            parent = self.parent[level]
            above[level] = np.maximum(above[parent], self.channel[parent])
        return self.channel > above

    def strings(self, chars: np.ndarray) -> np.ndarray:
        """Every node's string (n,); chars (K,) maps token ids to characters."""
        return spell_all(self.parent, self.token, self.depth, chars)


def distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values, sorted; each value's index among them): np.unique(values,
    return_inverse=True) without its import of numpy.ma, which costs a cold start 20 ms."""
    order = np.argsort(values, kind="stable")
    first = np.ones(len(values), dtype=bool)
    first[1:] = values[order][1:] != values[order][:-1]
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return values[order][first], inverse


def first_candidates(tries: dict[str, Candidates], chars: np.ndarray) -> list[str]:
    """The candidates no other candidate of their typed prefix starts (Candidates.first)."""
    return [s for t in tries.values() for s in spell_all(t.parent, t.token, t.depth, chars)[t.first()].tolist()]
