"""BLAS threads: `limit` sets and restores the count, `auto_threads` picks by GEMM size.

`limit`'s bookkeeping is checked against a fake thread setting everywhere; the real OpenBLAS
setter is checked where NumPy's OpenBLAS could be found.
"""

import numpy as np
import pytest

from rnnac.engine import blas


class FakeBlas:
    """A thread setting that records every change, in place of OpenBLAS."""

    def __init__(self, threads):
        self.threads = threads
        self.calls = []

    def get(self):
        return self.threads

    def set(self, n):
        self.calls.append(n)
        self.threads = n


@pytest.fixture
def fake(monkeypatch):
    fake = FakeBlas(4)
    monkeypatch.setattr(blas, "get_threads", fake.get)
    monkeypatch.setattr(blas, "set_threads", fake.set)
    return fake


def test_limit_sets_inside_and_restores_after(fake):
    with blas.limit(1):
        assert fake.threads == 1
    assert fake.threads == 4 and fake.calls == [1, 4]


def test_limit_nests(fake):
    with blas.limit(2):
        with blas.limit(1):
            assert fake.threads == 1
        assert fake.threads == 2
        with blas.limit(3):
            assert fake.threads == 3
        assert fake.threads == 2
    assert fake.threads == 4 and fake.calls == [2, 1, 2, 3, 2, 4]


def test_limit_restores_when_the_block_raises(fake):
    with pytest.raises(KeyError):
        with blas.limit(2):
            with blas.limit(1):
                raise KeyError("inside")
    assert fake.threads == 4 and fake.calls == [2, 1, 2, 4]


def test_limit_leaves_blas_alone_for_none_or_the_same_count(fake):
    with blas.limit(None):
        assert fake.threads == 4
    with blas.limit(4):
        assert fake.threads == 4
    assert fake.calls == []


def test_limit_is_a_no_op_without_openblas(fake):
    fake.threads = None  # what get_threads says when no OpenBLAS setter was found
    with blas.limit(1):
        pass
    assert fake.calls == []


@pytest.mark.parametrize("hidden_size, batch_size, threads", [
    (64, 64, 1),    # H*H*B = 64^3, the largest one-thread step
    (64, 65, None),  # one row more: BLAS's default
    (32, 256, 1),   # the same 64^3 multiply-adds, shaped otherwise
    (32, 257, None),
    (96, 48, None),  # measured: two threads win from here
    (1, 1, 1),
    (512, 256, None),
])
def test_auto_threads_thresholds(hidden_size, batch_size, threads):
    assert blas.auto_threads(hidden_size, batch_size) == threads


# ---- the real OpenBLAS ----

needs_openblas = pytest.mark.skipif(blas.get_threads() is None,
                                    reason="no OpenBLAS thread setter found in NumPy's BLAS (another BLAS, or not Linux)")


@pytest.fixture
def restore_threads():
    before = blas.get_threads()
    yield before
    blas.set_threads(before)


@needs_openblas
def test_set_and_get_round_trip(restore_threads):
    before = restore_threads
    assert before >= 1
    for n in (1, before, 1):  # 1 and the count OpenBLAS started with are valid on any machine
        blas.set_threads(n)
        assert blas.get_threads() == n


@needs_openblas
def test_limit_changes_the_real_thread_count(restore_threads):
    before = restore_threads
    with blas.limit(1):
        assert blas.get_threads() == 1
        a = np.ones((64, 64))
        np.testing.assert_array_equal(a @ a, np.full((64, 64), 64.0))  # BLAS still computes with one thread
    assert blas.get_threads() == before
    with pytest.raises(RuntimeError):
        with blas.limit(1):
            raise RuntimeError
    assert blas.get_threads() == before
