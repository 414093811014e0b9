"""LLM-free reference baselines (baselines/heuristics.py, baselines/overlap.py): every rule on hand-built
examples with answers computed by hand, including ties, empty profiles, half-up rounding and the length rule."""
from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from baselines.heuristics import GlobalMajority, UserMajority, round_half_up, typical_length
from baselines.overlap import ProfileOverlap, bracketed_candidates, content_words
from benchmark.data.example import Example
from benchmark.data.tasks import load_task


def make(cls, task: str, **cfg):
    """A method on a minimal context (config node + task spec): reference baselines need nothing else."""
    node = OmegaConf.merge(OmegaConf.structured(cls.Config), {"name": cls.name, **cfg})
    return cls(SimpleNamespace(cfg=SimpleNamespace(method=node), spec=load_task(task)))


def ex(task: str, i: int, profile=(), gold=None, **fields) -> Example:
    return Example(id=f"q{i}", user_id=f"u{i}", input=load_task(task).input_template.format(**fields),
                   profile=tuple(profile), gold=gold)


def train(task: str, golds, **fields) -> list[Example]:
    return [ex(task, 100 + i, gold=g, **fields) for i, g in enumerate(golds)]


def lamp2(i, tags=(), gold=None):
    return ex("LaMP_2", i, [{"description": f"movie {k}", "tag": t} for k, t in enumerate(tags)], gold,
              description="a film")


def lamp3(i, scores=(), gold=None):
    return ex("LaMP_3", i, [{"text": f"review {k}", "score": s} for k, s in enumerate(scores)], gold, text="ok")


def lamp1(i, ref1, ref2, papers=(), gold=None):
    return ex("LaMP_1", i, [{"title": t, "abstract": a} for t, a in papers], gold,
              title="A paper [1]: with brackets", ref1=ref1, ref2=ref2)


# ---------------------------------------------------------------------------------------------- small rules
def test_round_half_up_is_not_bankers_rounding():
    assert [round_half_up(Fraction(n, 2)) for n in (5, 7, 3)] == [3, 4, 2]   # round() would give 2, 4, 2
    assert round_half_up(Fraction(14, 3)) == 5 and round_half_up(Fraction(22, 5)) == 4


def test_typical_length_is_the_median_word_count_rounded_half_up():
    assert typical_length(["a b c", "a b c d e", "w " * 12, "w " * 8]) == 7      # median of 3,5,8,12 = 6.5
    assert typical_length(["a b", "a b c d", "w " * 9]) == 4                     # odd count: the middle one
    assert typical_length(["", ""]) == 1                                          # never an empty answer


# ---------------------------------------------------------------------------------------------- global_majority
def test_global_majority_label_tie_goes_to_label_order():
    m = make(GlobalMajority, "LaMP_2")
    m.fit([lamp2(100 + i, gold=g) for i, g in enumerate(["action", "comedy", "action", "sci-fi", "comedy"])])
    out = m.predict([lamp2(1, ["action"]), lamp2(2)])
    assert out.outputs == ["comedy", "comedy"]          # 2-2 tie; comedy precedes action in spec.labels
    assert out.raw_or_outputs() == out.outputs and out.prompts is None
    out = out.outputs
    cost = m.cost()
    assert cost["n_fallback_global"] == 0 and cost["rules"]["global_answer"] == "comedy"
    assert cost["trainable_params"] == 0 and GlobalMajority.uses_backbone is False


def test_global_majority_rejects_a_gold_outside_the_labels():
    m = make(GlobalMajority, "LaMP_2")
    with pytest.raises(ValueError, match=r"LaMP_2.*q101"):
        m.fit([lamp2(100, gold="comedy"), lamp2(101, gold="horror")])


def test_predict_before_fit_is_an_error():
    with pytest.raises(RuntimeError, match="before fit"):
        make(GlobalMajority, "LaMP_2").predict([lamp2(1)])


@pytest.mark.parametrize("stat,golds,expected", [
    ("mode", ["5", "4", "4", "5", "1"], "4"),        # 2-2 tie between 4 and 5 -> the lower rating
    ("mode", ["5.0", "3", "5"], "5"),                # '5.0' and '5' are the same rating
    ("mean_rounded", ["2", "3"], "3"),               # 2.5 -> 3 (half up)
    ("mean_rounded", ["5", "4", "4", "5", "1"], "4"),  # 3.8 -> 4
    ("mean_rounded", ["1", "1", "2"], "1"),          # 1.33 -> 1
])
def test_global_majority_rating(stat, golds, expected):
    m = make(GlobalMajority, "LaMP_3", rating_stat=stat)
    m.fit([lamp3(100 + i, gold=g) for i, g in enumerate(golds)])
    assert m.predict([lamp3(1, ["1", "1"])]).outputs == [expected]


def test_global_majority_unknown_rating_stat_names_the_config_file():
    with pytest.raises(ValueError, match="global_majority.yaml.*median"):
        make(GlobalMajority, "LaMP_3", rating_stat="median")


def test_global_majority_generation_copies_the_input_cut_to_the_median_gold_length():
    m = make(GlobalMajority, "LaMP_7")
    m.fit(train("LaMP_7", ["a b c", "a b c d e", "w " * 12, "w " * 8], text="x"))   # median 6.5 -> 7 words
    q = ex("LaMP_7", 1, text="one two:  three four five six seven eight nine")
    assert m.predict([q]).outputs == ["one two: three four five six seven"]     # text after the first colon only
    assert m.cost()["rules"]["global_length_words"] == 7


# ---------------------------------------------------------------------------------------------- user_majority
def test_user_majority_label_with_recency_tie_break_and_fallbacks():
    m = make(UserMajority, "LaMP_2")
    m.fit([lamp2(100 + i, gold=g) for i, g in enumerate(["classic", "classic", "action"])])
    out = m.predict([
        lamp2(1, ["sci-fi", "action", "sci-fi"]),                # clear majority
        lamp2(2, ["action", "comedy", "comedy", "action"]),      # 2-2 tie: action used last
        lamp2(3, ["comedy", "action", "action", "comedy"]),      # 2-2 tie: comedy used last
        lamp2(4, []),                                            # empty profile -> global
        lamp2(5, ["not a tag", "dystopia"]),                     # the non-label is ignored
        lamp2(6, ["not a tag"]),                                 # nothing usable -> global
    ]).outputs
    assert out == ["sci-fi", "action", "comedy", "classic", "dystopia", "classic"]
    cost = m.cost()
    assert cost["n_fallback_global"] == 2 and cost["n_ignored_profile_items"] == 2


@pytest.mark.parametrize("stat,scores,expected", [
    ("mean_rounded", ["2", "3"], "3"),                 # 2.5 -> 3
    ("mean_rounded", ["1", "2", "2", "5"], "3"),       # 10/4 = 2.5 -> 3
    ("mean_rounded", ["4", "5", "5"], "5"),            # 4.67 -> 5
    ("mean_rounded", ["3.0", "4", "oops"], "4"),       # 3.5 -> 4; the unparsable score is ignored
    ("mode", ["5", "4", "4", "5"], "5"),               # tie: 5 used last
    ("mode", ["4", "5", "5", "4"], "4"),               # tie: 4 used last
])
def test_user_majority_rating(stat, scores, expected):
    m = make(UserMajority, "LaMP_3", rating_stat=stat)
    m.fit([lamp3(100, gold="1")])
    assert m.predict([lamp3(1, scores)]).outputs == [expected]


def test_user_majority_rating_empty_profile_uses_the_fallback_statistic():
    m = make(UserMajority, "LaMP_3", fallback_rating_stat="mean_rounded")
    m.fit([lamp3(100 + i, gold=g) for i, g in enumerate(["5", "5", "1", "1"])])      # mean 3, mode 1
    assert m.predict([lamp3(1, []), lamp3(2, ["2"])]).outputs == ["3", "2"]
    assert m.cost()["n_fallback_global"] == 1


def test_user_majority_refuses_a_task_whose_profile_has_no_answer():
    assert "profile_overlap" in UserMajority.unsupported_reason(load_task("LaMP_1"))
    with pytest.raises(ValueError, match="user_majority does not apply to task LaMP_1"):
        make(UserMajority, "LaMP_1")


def headline_item(title: str, text: str) -> dict:
    return {"title": title, "text": text}


def test_user_majority_generation_nearest_past_answer_by_bm25():
    m = make(UserMajority, "LaMP_4")
    m.fit(train("LaMP_4", ["one two three"], text="x"))
    profile = [headline_item("red apples", "farm news today"),
               headline_item("tax rise vote", "parliament budget vote today"),     # shares 'budget' only
               headline_item("cup final", "football match report today"),
               headline_item("rain again", "weather storm warning today"),
               headline_item("new phone", "gadget launch review today")]
    q = ex("LaMP_4", 1, profile, text="budget debate")
    assert m.predict([q]).outputs == ["tax rise vote"]
    assert m.cost()["n_fallback_global"] == 0


def test_user_majority_generation_skips_empty_answers_and_falls_back_on_empty_profiles():
    m = make(UserMajority, "LaMP_4")
    m.fit(train("LaMP_4", ["one two three"], text="x"))
    profile = [headline_item("", "budget debate vote"),                  # best match, but no headline
               headline_item("tax rise", "budget plans"),                # second best: 'budget'
               headline_item("cup final", "football match report"),
               headline_item("rain again", "weather storm warning"),
               headline_item("new phone", "gadget launch review")]
    out = m.predict([ex("LaMP_4", 1, profile, text="budget debate"),
                     ex("LaMP_4", 2, [], text="Stocks fell sharply on Monday after the report")]).outputs
    assert out == ["tax rise", "Stocks fell sharply"]                    # fallback: first 3 words
    assert m.cost()["n_fallback_global"] == 1


# ---------------------------------------------------------------------------------------------- profile_overlap
def test_candidates_are_read_after_the_label_markers():
    q = lamp1(1, "Neural machine translation", "Graph parsing")
    assert bracketed_candidates(load_task("LaMP_1"), q) == ["Neural machine translation", "Graph parsing"]


def test_content_words_lowercase_alnum_minus_stopwords():
    assert content_words("The BLEU-4 score of a model, and its 2nd run") == {"bleu", "4", "score", "model", "2nd", "run"}


PAPERS = [("Statistical Machine Translation", "We study the translation of the sentences, with and for models.")]


@pytest.mark.parametrize("ref1,ref2,expected", [
    ("Neural machine translation", "Graph parsing of sentences", "[1]"),    # 2 vs 1 shared words
    ("Graph parsing", "Neural MACHINE translation", "[2]"),                 # case-insensitive
    ("Machine learning", "Translation tasks", "[1]"),                       # 1 vs 1: tie -> [1]
    ("Machine machine machine", "Statistical translation", "[2]"),          # distinct words: 1 vs 2
    ("The of and with for", "Machine", "[2]"),                              # stopwords never count
    ("Graph kernels", "Image captions", "[1]"),                             # 0 vs 0: tie -> [1]
])
def test_profile_overlap_rules(ref1, ref2, expected):
    m = make(ProfileOverlap, "LaMP_1")
    m.fit([lamp1(100, "a", "b", gold="[2]")])
    assert m.predict([lamp1(1, ref1, ref2, PAPERS)]).outputs == [expected]


def test_profile_overlap_counts_ties_and_falls_back_on_empty_profiles():
    m = make(ProfileOverlap, "LaMP_1")
    m.fit([lamp1(100 + i, "a", "b", gold=g) for i, g in enumerate(["[2]", "[1]", "[2]"])])
    out = m.predict([lamp1(1, "Machine learning", "Translation tasks", PAPERS), lamp1(2, "Machine", "Graph", [])]).outputs
    assert out == ["[1]", "[2]"]                                            # empty profile -> global "[2]"
    assert m.cost()["n_ties"] == 1 and m.cost()["n_fallback_global"] == 1


@pytest.mark.parametrize("task", ["LaMP_2", "LaMP_3", "LaMP_5"])
def test_profile_overlap_refuses_tasks_without_two_bracketed_candidates(task):
    with pytest.raises(ValueError, match=f"profile_overlap does not apply to task {task}.*two bracketed"):
        make(ProfileOverlap, task)


# ---------------------------------------------------------------------------------------------- wiring
@pytest.mark.slow   # the registry imports every method module (torch, transformers): ~15 s on a cold process
@pytest.mark.parametrize("task,method", [("LaMP_2", "global_majority"), ("LaMP_3", "user_majority"),
                                         ("LaMP_1", "profile_overlap")])
def test_method_files_compose_and_are_registered(task, method):
    from benchmark.contract.registry import get_method
    from benchmark.runs.config import compose

    cfg = compose(task, method, profile="test")
    assert cfg.method.name == method and get_method(method).uses_backbone is False
