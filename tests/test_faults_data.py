"""Bad word lists and bad sampling options: one-line errors, never a traceback or silent nonsense."""

import unicodedata

import numpy as np
import pytest
from click.testing import CliRunner

from rnnac.errors import DataError
from rnnac.interfaces.cli import cli
from rnnac.storage.wordlist import read_word_list, sampling_weights


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\u2028", "\u0085"])
def test_control_characters_in_a_word_list_are_refused_naming_the_line(tmp_path, char):
    path = tmp_path / "words.txt"
    path.write_text(f"cat\ndog\nb{char}d\n", encoding="utf-8", newline="")
    with pytest.raises(DataError, match=rf"line 3: 'b.*d' holds the control character U\+{ord(char):04X}"):
        read_word_list(path)


def test_control_characters_in_a_frequency_list_are_refused(tmp_path):
    path = tmp_path / "words.tsv"
    path.write_bytes(b"cat\t3\nd\x00g\t2\n")
    with pytest.raises(DataError, match=r"line 2: .* U\+0000"):
        read_word_list(path)


def test_windows_line_ends_are_not_control_characters(tmp_path):
    path = tmp_path / "words.tsv"
    path.write_bytes(b"cat\t3\r\ndog\t2\r\n")
    assert read_word_list(path).words == ["cat", "dog"]


def test_decomposed_and_precomposed_forms_are_one_word(tmp_path):
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert unicodedata.normalize("NFC", decomposed) == composed and decomposed != composed
    path = tmp_path / "words.tsv"
    path.write_text(f"{composed}\t2\n{decomposed}\t3\n", encoding="utf-8")
    words = read_word_list(path)
    assert words.words == [composed]
    assert words.counts.tolist() == [5.0]


def test_a_huge_bad_line_gives_a_short_message(tmp_path):
    path = tmp_path / "words.tsv"
    path.write_text("cat\t1\n" + "x" * 5_000_000 + "\t1\t2\n")
    with pytest.raises(DataError) as info:
        read_word_list(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 2: expected word<TAB>count, got 'xxx")
    assert message.endswith("(5,000,004 characters)")
    assert len(message) < 200 + len(str(path))


def test_counts_whose_sum_overflows_are_rescaled(tmp_path):
    path = tmp_path / "words.tsv"
    path.write_text("a\t1e308\nb\t1e308\nc\t5e307\n")
    words = read_word_list(path)
    assert np.isfinite(words.counts.sum())
    np.testing.assert_allclose(sampling_weights(words.counts, "count"), [0.4, 0.4, 0.2])


def test_one_words_counts_that_overflow_are_refused(tmp_path):
    path = tmp_path / "words.tsv"
    path.write_text("a\t1e308\na\t1e308\n")
    with pytest.raises(DataError, match="line 2: the counts of 'a' add up to more than a float holds"):
        read_word_list(path)


def test_a_list_that_reads_as_neither_counts_nor_history_is_one_line(tmp_path):
    path = tmp_path / "books.txt"
    path.write_text("1 corinthians\n2 kings\n3 john\n")
    for command in (["train", str(path)], ["evaluate", str(path)]):
        result = run(*command)
        assert result.exit_code == 1 and result.stdout == ""
        assert result.stderr.startswith(f"Error: {path}: the numbers run on by one") and result.stderr.count("\n") == 1
    assert read_word_list(path, format="lines").words == ["1 corinthians", "2 kings", "3 john"]


@pytest.mark.parametrize("args, hint", [
    (["--temperature", "nan"], "nan is not a finite number"),
    (["--temperature", "inf"], "inf is not a finite number"),
    (["--seed", "-5"], "-5 is not in the range x>=0"),
    (["--prefix", "abcdefgh", "--max-length", "3"], "8 characters, more than --max-length 3"),
])
def test_sample_refuses_options_it_cannot_honour(args, hint):
    result = run("sample", *args)
    assert result.exit_code == 2
    assert hint in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
