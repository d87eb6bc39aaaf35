import json
import math
from pathlib import Path

import numpy as np
import pytest

from rnnac.errors import CheckpointError, ConfigError, DataError
from rnnac.storage.listformats import detect_format
from rnnac.storage.wordlist import (
    SCHEMES,
    BatchSampler,
    read_word_list,
    sampling_weights,
    split_words,
)
from rnnac.training.data import load_data

DATA = Path(__file__).resolve().parent.parent / "data"


def padding_fraction(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Mean over batches of the padded share of each (B, T) batch, T = longest word + 1 (see make_batch)."""
    lengths = np.asarray(lengths)
    fractions = [1.0 - (lengths[b] + 1).sum() / (len(b) * (lengths[b].max() + 1)) for b in batches]
    return float(np.mean(fractions))


LETTERS = "abcdefghijklmnopqrstuvwxyz"


def write(tmp_path, data: bytes, name="words.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---- reading ----


def test_plain_list_crlf_whitespace_blank_lines(tmp_path):
    path = write(tmp_path, b"  cat \r\n\r\n\r\ndog\t\r\n   \r\nbird")
    with pytest.raises(DataError, match="line 4 holds a tab"):  # a tab in a plain list is a mistake
        read_word_list(path)
    path = write(tmp_path, b"  cat \r\n\r\n\r\ndog \r\n   \r\nbird")
    wl = read_word_list(path)
    assert wl.words == ["cat", "dog", "bird"]
    assert wl.counts.tolist() == [1.0, 1.0, 1.0] and wl.counts.dtype == np.float64
    assert wl.format == "lines" and not wl.is_frequency_list and wl.path == str(path)


def test_bom_is_stripped(tmp_path):
    wl = read_word_list(write(tmp_path, "\ufeffcafé\nnaïve\n".encode("utf-8")))
    assert wl.words == ["café", "naïve"]
    tsv = read_word_list(write(tmp_path, b"\xef\xbb\xbfthe\t5\n", "f.tsv"))
    assert tsv.format == "tsv" and tsv.words == ["the"] and tsv.counts.tolist() == [5.0]


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = write(tmp_path, b"ok\n\nfine\nbad\xffword\nlater\n")
    with pytest.raises(DataError) as e:
        read_word_list(path)
    assert str(path) in str(e.value) and "line 4" in str(e.value) and "0xff" in str(e.value)


def test_duplicates_merged_counts_added_first_seen_order(tmp_path):
    wl = read_word_list(write(tmp_path, b"b\na\nb\nc\nb\na\n"))
    assert wl.words == ["b", "a", "c"] and wl.counts.tolist() == [3.0, 2.0, 1.0]
    tsv = read_word_list(write(tmp_path, b"the\t10\nof\t1.5e3\nthe\t2.5\nzero\t0\n", "f.tsv"))
    assert tsv.words == ["the", "of", "zero"] and tsv.counts.tolist() == [12.5, 1500.0, 0.0]


def test_lowercasing_merges_before_counting(tmp_path):
    path = write(tmp_path, b"The\t3\nthe\t4\nTHE\t1\nOf\t2\n")
    assert read_word_list(path).counts.tolist() == [8.0, 2.0]
    kept = read_word_list(path, lowercase=False)
    assert kept.words == ["The", "the", "THE", "Of"] and kept.counts.tolist() == [3.0, 4.0, 1.0, 2.0]


@pytest.mark.parametrize("line, why", [
    (b"of\tmany", "is not a number"),
    (b"of\t-1", "finite number >= 0"),
    (b"of\tnan", "finite number >= 0"),
    (b"of\tinf", "finite number >= 0"),
    (b"of\t", "is not a number"),
    (b"of", "expected word<TAB>count"),
    (b"of\t1\t2", "expected word<TAB>count"),
    (b"\t7", "expected word<TAB>count"),
])
def test_bad_tsv_line_names_file_and_line(tmp_path, line, why):
    path = write(tmp_path, b"the\t10\n\nand\t5\n" + line + b"\n", "f.tsv")
    with pytest.raises(DataError, match=why) as e:
        read_word_list(path)
    assert str(path) in str(e.value) and "line 4" in str(e.value)


def test_missing_empty_and_filtered_out(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_word_list(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="holds no words"):
        read_word_list(write(tmp_path, b"\n  \r\n"))
    path = write(tmp_path, b"Ab1\nx\n")
    with pytest.raises(DataError, match="no words left after filtering") as e:
        read_word_list(path, allowed_chars="ab", min_length=2)
    assert str(path) in str(e.value)


def test_allowed_chars_lengths_and_max_words(tmp_path):
    path = write(tmp_path, b"don't\na\nabc\nx-ray\nabcabca\nab\nabc\nCab\nba\nb\n")
    wl = read_word_list(path, allowed_chars="abc", min_length=2, max_length=3)
    # "don't" and "x-ray" have other characters; "a", "abcabca", "b" have the wrong length;
    # "Cab" is lowercased first, so it passes.
    assert wl.words == ["abc", "ab", "cab", "ba"] and wl.counts.tolist() == [2.0, 1.0, 1.0, 1.0]
    assert (wl.dropped_chars, wl.dropped_length, wl.dropped_max_words) == (2, 3, 0)
    assert wl.lengths.tolist() == [3, 2, 3, 2]
    top = read_word_list(path, allowed_chars="abc", min_length=2, max_length=3, max_words=2)
    assert top.words == ["abc", "ab"] and top.dropped_max_words == 2
    assert top.summary() == (f"{path}: 2 words (one word per line), dropped 2 for characters, "
                             "3 for length, 2 beyond max_words")


def test_bad_limits_are_config_errors(tmp_path):
    path = write(tmp_path, b"a\n")
    for kwargs in ({"min_length": 0}, {"min_length": 3, "max_length": 2}, {"max_words": 0}):
        with pytest.raises(ConfigError):
            read_word_list(path, **kwargs)


def test_bundled_words_tsv():
    wl = read_word_list(DATA / "words.tsv")
    assert len(wl) == 50_000 and wl.format == "tsv"  # every line is a distinct lowercase word
    assert wl.words[:3] == ["the", "to", "and"] and wl.counts[0] == 53_700_000
    letters = read_word_list(DATA / "words.tsv", allowed_chars=LETTERS)
    assert len(letters) == 48_683 and letters.dropped_chars == 1_317  # those hold an apostrophe
    assert np.all(np.diff(letters.counts) <= 0)  # still most frequent first


def test_bundled_names_txt():
    raw = (DATA / "names.txt").read_text(encoding="utf-8")
    assert len(raw.split("\n")) == 32_033  # the last line has no newline
    wl = read_word_list(DATA / "names.txt", allowed_chars=LETTERS)
    assert wl.format == "lines" and len(wl) == 29_494 and wl.counts.sum() == 32_033  # repeats merged
    assert wl.dropped_chars == wl.dropped_length == 0
    assert wl.lengths.min() == 2 and wl.lengths.max() == 15


def test_uniq_c_output_is_a_frequency_list(tmp_path):
    path = write(tmp_path, b"     12 the\n      3 Of\n      5 \n     2 of\n 1234567 a word\n      1 x,y\n")
    wl = read_word_list(path)
    assert wl.format == "uniq" and wl.is_frequency_list
    assert wl.words == ["the", "of", "a word", "x,y"] and wl.counts.tolist() == [12.0, 5.0, 1234567.0, 1.0]
    assert wl.summary() == f"{path}: 4 words (frequency list, uniq -c)"  # `uniq -c` of blank lines: skipped
    assert read_word_list(write(tmp_path, b"      2 \n      3 a\n")).words == ["a"]  # blank lines sort first
    assert read_word_list(write(tmp_path, b"1\n2\n")).words == ["1", "2"]  # numbers, one a line
    with pytest.raises(DataError, match=r"line 2: expected count word \(uniq -c\), got 'the'"):
        read_word_list(write(tmp_path, b"  3 a\nthe\n"))


def test_csv_word_count_with_or_without_a_header(tmp_path):
    plain = read_word_list(write(tmp_path, b"the, 12\nof,3\n\"a, b\",2\n\"say \"\"hi\"\"\",1.5\n"))
    assert plain.format == "csv" and plain.words == ["the", "of", "a, b", 'say "hi"']
    assert plain.counts.tolist() == [12.0, 3.0, 2.0, 1.5]
    headed = read_word_list(write(tmp_path, b"word,count\nthe,12\n", "list.csv"))
    assert headed.format == "csv" and headed.words == ["the"] and headed.summary().endswith("(frequency list, CSV)")
    named = read_word_list(write(tmp_path, b"word,frequency\nthe,1\n", "list.txt"), format="csv")  # said outright
    assert named.words == ["the"]
    with pytest.raises(DataError, match=r"line 3: expected word,count, got 'of'"):
        read_word_list(write(tmp_path, b"word,count\nthe,12\nof\n", "f.csv"))
    with pytest.raises(DataError, match=r"line 2: count 'many' is not a number"):
        read_word_list(write(tmp_path, b"the,12\nof,many\n"))


def test_semicolon_csv_as_spreadsheets_write_it(tmp_path):
    headed = read_word_list(write(tmp_path, b"Wort;Anzahl\r\nthe;12\r\nof;3,5\r\n\"a; b\";2\r\nx,y;1\r\n", "list.txt"))
    assert headed.format == "csv" and headed.words == ["the", "of", "a; b", "x,y"]
    assert headed.counts.tolist() == [12.0, 3.5, 2.0, 1.0]  # 3,5: a decimal comma
    plain = read_word_list(write(tmp_path, b"the;2,5\nof;3\n", "list.csv"))
    assert plain.words == ["the", "of"] and plain.counts.tolist() == [2.5, 3.0]
    commas = read_word_list(write(tmp_path, b"a;b,5\nc,1.5\n"))  # `;` in a word of a `,` CSV
    assert commas.words == ["a;b", "c"] and commas.counts.tolist() == [5.0, 1.5]
    with pytest.raises(DataError, match=r"line 3: expected word;count, got 'of;1;2'"):
        read_word_list(write(tmp_path, b"word;count\nthe;12\nof;1;2\n", "f.csv"))
    with pytest.raises(DataError, match=r"line 2: count '1.234,5' is not a number"):
        read_word_list(write(tmp_path, b"the;12\nof;1.234,5\n"))


def test_a_header_line_then_counts_is_csv_whatever_the_name(tmp_path):
    wl = read_word_list(write(tmp_path, b"word,count\nthe,12\nof,3\n", "list.txt"))  # was: three words with commas
    assert wl.format == "csv" and wl.words == ["the", "of"]
    assert read_word_list(write(tmp_path, b"rock, paper\nscissors\n")).words == ["rock, paper", "scissors"]


@pytest.mark.parametrize("line, fmt", [
    ("the\t5", "tsv"), ("   5 the", "uniq"), ("5 the", "uniq"), ("  101  git push", "history"), ("    7* vi x", "history"),
    ("the,5", "csv"), ("the, 5.5e3", "csv"), ("the;5", "csv"), ("the;2,5", "csv"), ("the;", "lines"),
    ("the", "lines"), ("the,", "lines"), (",5", "lines"), ("5", "lines"), ("rock and roll", "lines"), ("a,b", "lines"),
])
def test_the_format_is_detected_from_the_first_line(line, fmt):
    assert detect_format(line) == fmt
    assert detect_format(line, "x.CSV") == (fmt if fmt in ("tsv", "uniq", "history") else "csv")


def test_spaces_that_end_an_entry_belong_to_it_in_a_list_of_phrases(tmp_path):
    commands = read_word_list(write(tmp_path, b"cd \r\ncd\r\n  ls -la\r\ngit push  \r\ncd \r\nls\r\nmake\r\n"))
    assert commands.words == ["cd ", "cd", "ls -la", "git push  ", "ls", "make"]
    assert commands.counts.tolist() == [2.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    tsv = read_word_list(write(tmp_path, b"cd \t3\ncd\t1\nls -la\t2\n", "f.tsv"))
    assert tsv.words == ["cd ", "cd", "ls -la"] and tsv.counts.tolist() == [3.0, 1.0, 2.0]
    quoted = read_word_list(write(tmp_path, b'"cd ",3\ncd ,1\n"git push",2\nls,5\nmake,1\n', "f.csv"))
    assert quoted.words == ["cd ", "git push", "ls", "make"] and quoted.counts.tolist() == [4.0, 2.0, 5.0, 1.0]
    uniq = read_word_list(write(tmp_path, b"      3 cd \n      1 cd\n      2 ls -la\n"))
    assert uniq.words == ["cd ", "cd", "ls -la"]


@pytest.mark.parametrize("data, words", [
    # words, one of them with a space inside: the spaces at the end are stray
    (b"cat \ndog\n" * 5 + b"ice cream\n", ["cat", "dog", "ice cream"]),
    # phrases padded to a width: most end in spaces
    (b"ice cream  \nhot dog    \nsoda       \ncd \ncd\nbanana split\n", ["ice cream", "hot dog", "soda", "cd",
                                                                       "banana split"]),
    # white space other than spaces, after the spaces, is no part of the entry
    ("ice cream \u00a0\nhot dog\nsoda\n".encode(), ["ice cream ", "hot dog", "soda"]),
])
def test_spaces_at_the_end_of_words_or_of_padded_phrases_are_dropped(tmp_path, data, words):
    assert read_word_list(write(tmp_path, data)).words == words


# `history` as bash prints it (`%5d%c %s`: `*` marks an edited command); `cd ` was typed with a space.
HISTORY = ["ls", "git status", "git push", "cd ", "cd", "git push", "vim notes.txt", "git push", "make test"]
HISTORY_WORDS = ["ls", "git status", "git push", "cd ", "cd", "vim notes.txt", "make test"]
HISTORY_COUNTS = [1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 1.0]


def history_output(stamps=None, start=998) -> bytes:
    stamps = stamps or [""] * len(HISTORY)
    lines = [f"{start + i:5d}{'*' if command.startswith('vim') else ' '} {stamp}{command}\n"
             for i, (stamp, command) in enumerate(zip(stamps, HISTORY))]
    return "".join(lines).encode()


def test_history_output_is_each_command_as_often_as_it_was_typed(tmp_path):
    path = write(tmp_path, history_output(), "history.txt")
    assert path.read_text().startswith("  998  ls\n  999  git status\n 1000  git push\n 1001  cd \n")
    wl = read_word_list(path)
    assert wl.format == "history" and wl.is_frequency_list and wl.summary() == f"{path}: 7 words (shell history)"
    assert wl.words == HISTORY_WORDS and wl.counts.tolist() == HISTORY_COUNTS
    grepped = write(tmp_path, b"  101  git push\n  205  git pull\n  230  git push\n")  # history | grep git
    assert read_word_list(grepped).format == "history" and read_word_list(grepped).counts.tolist() == [2.0, 1.0]
    assert read_word_list(grepped, format="uniq").counts.tolist() == [331.0, 205.0]  # said outright
    assert read_word_list(write(tmp_path, b"    1  ls\n")).format == "history"


@pytest.mark.parametrize("stamp", [
    "2024-01-02 10:00:00 ",  # HISTTIMEFORMAT="%F %T "
    "02/01/24 10:00:00 ",  # "%d/%m/%y %T "
    "Tue Jan  2 10:00:00 2024 ",  # "%c "
    "[2024-01-02 10:00:00] ",  # "[%F %T] "
    "1704189600|",  # "%s|"
    "2024-01-02 10:00  ",  # zsh: history -i
    "10:00  ",  # zsh: history -d
])
def test_time_stamps_before_the_commands_are_cut_off(tmp_path, stamp):
    stamps = [stamp] * len(HISTORY)
    stamps[1] = "??"  # bash, for a command saved without its time
    wl = read_word_list(write(tmp_path, history_output(stamps)))
    assert wl.format == "history" and wl.words == HISTORY_WORDS and wl.counts.tolist() == HISTORY_COUNTS


@pytest.mark.parametrize("stamps, why", [
    (["20240102-100000 "] * len(HISTORY), "every command starts with a digit, as after a time stamp of a form rnnac"),
    (["2024-01-02 10:00:00 "] * 3 + [""] * (len(HISTORY) - 3), "line 1 starts with a time stamp and line 4 does not"),
])
def test_time_stamps_that_cannot_be_cut_off_are_refused(tmp_path, stamps, why):
    with pytest.raises(DataError, match=why + ".*HISTTIMEFORMAT= history"):
        read_word_list(write(tmp_path, history_output(stamps)), format="history")


def test_uniq_c_and_history_are_told_apart_by_the_whole_file(tmp_path):
    # `sort | uniq -c`: one space after counts padded to a width, even counts running 1, 2, 3.
    for data in (b"      3 git push\n      1 ls\n      2 cd \n", b"      1 a\n      2 b\n      3 c\n"):
        assert read_word_list(write(tmp_path, data)).format == "uniq"
    assert read_word_list(write(tmp_path, b"1 corinthians\n2 kings\n")).format == "uniq"  # two lines: no sign
    with pytest.raises(DataError, match=r"run on by one .* a numbered list.*data.format \(lines, uniq or history\)"):
        read_word_list(write(tmp_path, b"1 corinthians\n2 kings\n3 john\n"))
    two_histories = history_output() + history_output()
    with pytest.raises(DataError, match=r"two spaces follow every number, .* numbers fall at line 10"):
        read_word_list(write(tmp_path, two_histories))
    assert read_word_list(write(tmp_path, two_histories), format="history").counts.tolist() == [2 * c for c in HISTORY_COUNTS]
    with pytest.raises(DataError, match=r"line 3: expected a number, two spaces and a command \(history\), "
                                        r"got 'echo \$f' \(a command of several lines\?"):
        read_word_list(write(tmp_path, b"    1  for f in *; do\n    2  ls\necho $f\n"))


def test_a_format_given_outright_is_not_detected(tmp_path):
    path = write(tmp_path, b"1 corinthians\n2 kings\n")
    assert read_word_list(path).format == "uniq"
    assert read_word_list(path, format="lines").words == ["1 corinthians", "2 kings"]
    with pytest.raises(DataError, match="line 1: expected word<TAB>count"):
        read_word_list(path, format="tsv")
    with pytest.raises(ConfigError, match="unknown word list format 'xml'"):
        read_word_list(path, format="xml")


def test_load_data_reads_data_format(tmp_path):
    from rnnac.training.config import Config

    path = write(tmp_path, b"1 corinthians\n2 kings\n3 john\n")
    config = Config.from_dict({"data": {"path": str(path), "format": "lines", "val_fraction": 0}})
    assert load_data(config).words == ["1 corinthians", "2 kings", "3 john"]


# ---- split ----


def test_split_is_deterministic_disjoint_and_complete():
    train, val = split_words(1000, 0.1, seed=7)
    again_train, again_val = split_words(1000, 0.1, seed=7)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)
    assert len(val) == 100 and len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(1000))
    assert not np.array_equal(val, split_words(1000, 0.1, seed=8)[1])
    # Pinned so a change of generator or algorithm is noticed (PCG64 is the same on every machine).
    assert split_words(10, 0.3, seed=123)[1].tolist() == [0, 4, 7]


def test_split_edge_sizes():
    assert [len(v) for v in split_words(2, 0.01, seed=0)] == [1, 1]  # at least one val word
    assert [len(v) for v in split_words(3, 0.99, seed=0)] == [1, 2]  # never all of them
    assert [len(v) for v in split_words(1, 0.5, seed=0)] == [1, 0]
    assert [len(v) for v in split_words(5, 0.0, seed=0)] == [5, 0]
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="val_fraction"):
            split_words(5, bad, seed=0)


# ---- weights ----


@pytest.mark.parametrize("scheme, counts, expected", [
    ("uniform", [5, 0, 1, 2], [0.25, 0.25, 0.25, 0.25]),
    ("count", [1, 3], [0.25, 0.75]),
    ("count", [2, 0, 6], [0.25, 0.0, 0.75]),
    ("sqrt", [1, 4, 9, 16], [0.1, 0.2, 0.3, 0.4]),
    ("log", [0, 1, 3], [0.0, 1 / 3, 2 / 3]),  # log1p: 0, ln 2, ln 4 = 2 ln 2
])
def test_sampling_weights(scheme, counts, expected):
    weights = sampling_weights(np.array(counts, dtype=np.float64), scheme)
    np.testing.assert_allclose(weights, expected, rtol=1e-12, atol=1e-15)
    assert math.isclose(weights.sum(), 1.0)


def test_sampling_weights_errors():
    with pytest.raises(ConfigError, match="unknown sampling scheme 'zipf'"):
        sampling_weights(np.ones(3), "zipf")
    with pytest.raises(DataError, match="weight 0"):
        sampling_weights(np.zeros(3), "count")
    assert sampling_weights(np.zeros(3), "uniform").tolist() == [1 / 3] * 3


# ---- sampler ----


def lengths_of(n, seed=0):
    return np.random.default_rng(seed).integers(1, 16, size=n)  # (N,)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_sampler_is_deterministic(scheme):
    lengths, counts = lengths_of(500), np.arange(500.0)
    a = BatchSampler(lengths, 32, seed=3, scheme=scheme, counts=counts, bucket_batches=4)
    b = BatchSampler(lengths, 32, seed=3, scheme=scheme, counts=counts, bucket_batches=4)
    for _ in range(40):  # crosses two epoch boundaries (16 batches per epoch)
        assert np.array_equal(a.next_batch(), b.next_batch())
    c = BatchSampler(lengths, 32, seed=4, scheme=scheme, counts=counts, bucket_batches=4)
    assert not all(np.array_equal(a.next_batch(), c.next_batch()) for _ in range(5))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("k", [0, 5, 15, 16, 23])
def test_sampler_resumes_exactly(scheme, k):
    lengths, counts = lengths_of(500), np.arange(500.0) + 1
    run = BatchSampler(lengths, 32, seed=11, scheme=scheme, counts=counts, bucket_batches=4)
    for _ in range(k):
        run.next_batch()
    state = json.loads(json.dumps(run.state_dict()))  # as a checkpoint would store it
    resumed = BatchSampler.from_state(state, lengths, counts=counts)
    assert (resumed.epoch, resumed.position) == (run.epoch, run.position)
    for _ in range(20):
        assert np.array_equal(run.next_batch(), resumed.next_batch())


def test_sampler_state_mismatch_is_an_error():
    state = BatchSampler(lengths_of(100), 8).state_dict()
    with pytest.raises(CheckpointError, match="100 words"):
        BatchSampler.from_state(state, lengths_of(99))
    with pytest.raises(CheckpointError, match="out of range"):
        BatchSampler.from_state({**state, "position": 13}, lengths_of(100))  # 13 batches per epoch
    with pytest.raises(CheckpointError, match="lacks seed"):
        BatchSampler.from_state({k: v for k, v in state.items() if k != "seed"}, lengths_of(100))


def test_uniform_epoch_serves_every_index_once():
    lengths = lengths_of(1003)
    sampler = BatchSampler(lengths, 50, seed=0, bucket_batches=3)
    assert sampler.batches_per_epoch == 21
    batches = [sampler.next_batch() for _ in range(21)]
    assert sampler.epoch == 1 and sampler.position == 0  # counted as soon as the last batch is served
    served = np.concatenate(batches)
    assert np.array_equal(np.sort(served), np.arange(1003))
    assert sorted(len(b) for b in batches) == [3] + [50] * 20  # only one short batch
    second = np.concatenate([sampler.next_batch() for _ in range(21)])
    assert np.array_equal(np.sort(second), np.arange(1003)) and not np.array_equal(second, served)


def test_weighted_epoch_follows_the_weights():
    counts = np.array([1.0, 0.0, 3.0, 0.0])
    sampler = BatchSampler(np.ones(4, dtype=int), 4, seed=0, scheme="count", counts=counts)
    drawn = np.concatenate([sampler.next_batch() for _ in range(2000)])  # 8000 draws
    freq = np.bincount(drawn, minlength=4) / len(drawn)
    np.testing.assert_allclose(freq, [0.25, 0.0, 0.75, 0.0], atol=0.02)
    assert sampler.epoch == 2000


def test_bucketing_cuts_padding_on_bundled_words():
    lengths = read_word_list(DATA / "words.tsv", allowed_chars=LETTERS).lengths
    measured = {}
    for bucket_batches in (50, 1):  # 1 = no bucketing: sorting inside one batch changes nothing
        sampler = BatchSampler(lengths, 64, seed=0, bucket_batches=bucket_batches)
        batches = [sampler.next_batch() for _ in range(sampler.batches_per_epoch)]
        measured[bucket_batches] = padding_fraction(lengths, batches)
    # Measured with seed 0, batch 64: ~0.021 of each (B, T) batch is padding when bucketed, ~0.44 without.
    assert measured[50] < 0.05 and measured[1] > 0.35


def test_padding_fraction_by_hand():
    lengths = np.array([1, 3, 3])
    # Batch [0, 1]: T = 4, real targets 2 + 4 = 6 of 8 -> 0.25 padding; batch [1, 2]: none.
    assert padding_fraction(lengths, [np.array([0, 1]), np.array([1, 2])]) == pytest.approx(0.125)


def test_sampler_config_errors():
    with pytest.raises(ConfigError, match="unknown sampling scheme"):
        BatchSampler(lengths_of(10), 4, scheme="zipf")
    with pytest.raises(ConfigError, match="needs word counts"):
        BatchSampler(lengths_of(10), 4, scheme="sqrt")
    with pytest.raises(ConfigError, match="batch_size"):
        BatchSampler(lengths_of(10), 0)


def test_the_most_frequent_written_form_is_kept_beside_the_lowercased_word(tmp_path):
    path = write(tmp_path, b"iPhone\niPhone\niphone\nApple\napple\nParis\nBONN\nbonn\nBonn\nIPHONE\n")
    wl = read_word_list(path)
    assert wl.words == ["iphone", "apple", "paris", "bonn"] and wl.counts.tolist() == [4.0, 2.0, 1.0, 3.0]
    assert wl.written == ["iPhone", "apple", "Paris", "bonn"]  # ties keep the lowercase word
    assert read_word_list(path, lowercase=False).cased == {}
    tsv = read_word_list(write(tmp_path, b"the\t10\nThe\t3\nNASA\t2\n", "f.tsv"))
    assert tsv.written == ["the", "NASA"]
    from rnnac.training.config import Config

    data = load_data(Config.from_dict({"data": {"path": str(path), "val_fraction": 0}}))
    assert data.words == wl.words and data.written == wl.written


def test_accent_folding_merges_words_and_keeps_their_most_frequent_spelling(tmp_path):
    path = write(tmp_path, "Café\t5\ncafe\t2\ncafé\t1\nStraße\t4\nstrasse\t1\ncre\u0300me\t3\nØl\t2\nnaïve\t1\n".encode(), "f.tsv")
    wl = read_word_list(path, fold_accents=True)
    assert wl.words == ["cafe", "strasse", "creme", "ol", "naive"] and wl.counts.tolist() == [8.0, 5.0, 3.0, 2.0, 1.0]
    assert wl.written == ["Café", "Straße", "crème", "Øl", "naïve"]  # decomposed è read in NFC
    kept_case = read_word_list(path, lowercase=False, fold_accents=True)
    assert kept_case.words == ["Cafe", "cafe", "Strasse", "strasse", "creme", "Ol", "naive"]
    assert kept_case.written[:2] == ["Café", "cafe"] and kept_case.counts.tolist()[:2] == [5.0, 3.0]
    assert read_word_list(path).words == ["café", "cafe", "straße", "strasse", "crème", "øl", "naïve"]  # without it
    only_ascii = read_word_list(path, fold_accents=True, allowed_chars="abcdefghijklmnopqrstuvwxyz")
    assert only_ascii.dropped_chars == 0  # the folded words are filtered


def test_the_vocabulary_is_built_from_folded_words(tmp_path):
    from rnnac.training.config import Config

    path = write(tmp_path, "Café\nCrème\nŁódź\nStraße\n".encode())
    data = load_data(Config.from_dict({"data": {"path": str(path), "val_fraction": 0}}))
    assert "".join(data.vocab.chars) == "acdeflmorstz" and data.written == ["Café", "Crème", "Łódź", "Straße"]
    kept = load_data(Config.from_dict({"data": {"path": str(path), "val_fraction": 0, "fold_accents": False}}))
    assert {"é", "è", "ł", "ó", "ź", "ß"} <= set(kept.vocab.chars)


def test_the_spelling_wins_before_the_case(tmp_path):
    path = write(tmp_path, "Crème\ncrème\nCafé\nCAFÉ\ncafe\nStraße\nSTRASSE\nstrasse\n".encode())
    wl = read_word_list(path, fold_accents=True)
    assert wl.words == ["creme", "cafe", "strasse"]
    assert wl.written == ["crème", "café", "strasse"]  # written crème twice; café twice, cafe once; strasse twice
    cased = read_word_list(write(tmp_path, "Crème\nCrème\ncrème\nÉcole\n".encode()), fold_accents=True)
    assert cased.written == ["Crème", "École"]
