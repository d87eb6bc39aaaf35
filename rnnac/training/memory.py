"""The memory a run needs and the memory it may have, compared before the model is allocated.

`memory_needed` estimates a run's peak (parameters, optimizer state, the BPTT workspace);
`check_memory` refuses a run that needs more than the machine has or `ulimit -v` leaves the
process, naming model.hidden_size and train.batch_size, the two sizes to change.
"""

from __future__ import annotations

import math
import os

import numpy as np

from rnnac.engine.optim import OPTIMIZERS
from rnnac.errors import MemoryLimitError
from rnnac.training.config import Config
from rnnac.training.data import Data


def check_memory(config: Config, data: Data, val_batch: int) -> None:
    """MemoryLimitError, naming the sizes, if the run would need more memory than it may have;
    `val_batch` is the number of words in a validation batch."""
    need, (have, where) = memory_needed(config, data, val_batch), _memory_available()
    if need > have:
        raise MemoryLimitError(
            f"model.hidden_size {config.model.hidden_size:,} with train.batch_size {config.train.batch_size:,} needs "
            f"about {_gib(need)} of memory (parameters, optimizer state, BPTT workspace), more than {where} "
            f"({_gib(have)}): choose a smaller model.hidden_size or train.batch_size")


def memory_needed(config: Config, data: Data, val_batch: int) -> int:
    """Bytes a run needs at its peak, roughly.

    Parameters (U, V (H, K); W (H, H); b, c), their gradients and the optimizer's slots; the
    temporaries of an update, a few arrays the size of W; the BPTT workspace of bptt.py for the
    larger of a training and a validation batch, A, h'(z) and dL/dz (T, B, H) and the logits,
    softmax and one-hot inputs (T*B, K), where T is the longest word plus its boundary; and the
    validation batches, built once (int64 inputs and targets, float64 mask)."""
    H, K, settings = config.model.hidden_size, len(data.vocab), config.train
    n_params = 2 * H * K + H * H + H + K
    slots = len(OPTIMIZERS.get(settings.optimizer, OPTIMIZERS["adam"]).slots)  # make_optimizer refuses a bad name
    longest = max(map(len, data.train_words), default=0) + 1  # T of the training batches
    longest_val = max(map(len, data.val_words), default=0) + 1
    positions = max(longest * settings.batch_size, longest_val * min(val_batch, len(data.val_words)))  # T * B
    elements = (2 + slots) * n_params + 4 * max(H * H, H * K) + 3 * positions * (H + K)
    return elements * np.dtype(config.model.dtype).itemsize + 24 * longest_val * len(data.val_words)


def _memory_available() -> tuple[float, str]:
    """Bytes the run may use and where that limit comes from: the machine's memory, or the
    process's address-space limit (ulimit -v) less what it already maps."""
    try:
        have, where = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine has"
    except (AttributeError, ValueError, OSError):  # not a POSIX system: no estimate
        have, where = math.inf, "this machine has"
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, AttributeError, OSError):
        return have, where
    if soft != resource.RLIM_INFINITY and soft - _mapped_bytes() < have:
        have, where = soft - _mapped_bytes(), "the process may still map (ulimit -v)"
    return have, where


def _mapped_bytes() -> int:
    """The address space this process maps now (Linux), else 0."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"
