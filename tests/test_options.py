"""The option rules (rnnac.inference.options): once in the library, spelled by each interface."""

import pytest

import rnnac
from rnnac.errors import RnnacError
from rnnac.inference.completer import Completer
from rnnac.inference.options import OptionError, check_options, check_score_options
from rnnac.storage.lexicon import Lexicon
from test_search import VOCAB, random_model


def test_an_option_error_names_the_options_as_each_interface_does():
    with pytest.raises(OptionError) as caught:
        check_options(known_only=True, open=True)
    error = caught.value
    assert isinstance(error, RnnacError) and isinstance(error, ValueError)
    assert str(error) == "known_only and open cannot be used together"
    assert error.options == ["known_only", "open"]
    flag = error.spelled(lambda name: f"--{name.replace('_', '-')}", "this model")
    assert flag == "--known-only and --open cannot be used together"
    with pytest.raises(OptionError) as caught:
        check_score_options(mixture=False, mixture_lambda=0.5)
    assert str(caught.value) == "mixture_lambda goes with lexicon"
    assert caught.value.spelled(str, "model 'en'") == "lambda goes with mixture"


@pytest.mark.parametrize("options, message", [
    ({"known_only": True, "open": True}, "known_only and open cannot be used together"),
    ({"beam": 2, "max_edits": 1}, "beam and max_edits cannot be used together: typo-tolerant search is exact only"),
    ({"known_only": True, "has_lexicon": False}, "the completer carries no lexicon: known_only needs one"),
    ({"known_only": False, "has_lexicon": False}, "the mixture needs a lexicon: the completer carries none"),
    ({"match": "word"}, "match must be prefix or word-start, got 'word'"),
    ({"match": "{x}"}, "match must be prefix or word-start, got '{x}'"),
    ({"match": "word-start", "max_edits": 1},
     "match word-start and max_edits cannot be used together: typos are forgiven in prefixes only"),
    ({"match": "word-start", "beam": 2}, "match word-start and beam cannot be used together: word-start matching scores every match"),
    ({"match": "word-start", "open": True, "has_lexicon": False}, "match word-start needs a lexicon: the completer carries none"),
])
def test_options_that_do_not_go_together(options, message):
    with pytest.raises(OptionError) as caught:
        check_options(**options)
    assert str(caught.value) == message


@pytest.mark.parametrize("options", [
    {}, {"known_only": True}, {"open": True, "has_lexicon": False}, {"known_only": None, "has_lexicon": False},
    {"beam": 2}, {"max_edits": 3}, {"known_only": True, "has_lexicon": True},
    {"match": "word-start", "open": True, "has_lexicon": True}, {"match": "word-start", "known_only": True},
])
def test_options_that_go_together(options):
    check_options(**options)


@pytest.mark.parametrize("args, message", [
    ((True, None, False), "the completer carries no lexicon: lexicon needs one"),
    ((True, None, True, 1.0), "the completer gives its lexicon all the weight: give mixture_lambda below 1 to score"),
])
def test_score_options_that_do_not_go_together(args, message):
    with pytest.raises(OptionError) as caught:
        check_score_options(*args)
    assert str(caught.value) == message


def test_score_options_that_go_together():
    check_score_options(True, 0.5, True, 1.0)  # a lambda below 1 given: the model's own does not matter
    check_score_options(True, None)  # nothing known of the model yet
    check_score_options(False, None, False, 1.0)


def test_complete_many_keeps_the_rules():
    plain = Completer(random_model(0), VOCAB)
    with pytest.raises(OptionError, match="known_only and open"):
        plain.complete_many(["a"], known_only=True, open=True)
    with pytest.raises(OptionError, match="beam and max_edits"):
        plain.complete_many(["a"], beam=2, max_edits=1)
    with pytest.raises(OptionError, match="carries no lexicon"):
        plain.complete_many(["a"], known_only=True)
    assert plain.complete_many(["a"], open=True)[0].error is None
    given = Lexicon(["ab"], rnnac.Vocab("abc"))
    assert [c.word for c in plain.complete("a", lexicon=given).completions] == ["ab"]  # known_only None: its words only
