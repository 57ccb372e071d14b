"""izkit.metrics: the benchmark's normalisation and every metric on hand-checked cases."""

import pytest

from izkit.metrics import METRIC_BY_TASK, contains, exact_match, exact_set, f1, metric_for, normalise, score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Cold.  ", "cold"),
        ("Hot\nand more lines", "hot"),
        ("The answer is: cold. Really.", "the answer is cold"),
        ("forty-two", "forty two"),
        ("cat and dog", "cat dog"),
        ("Sentence 1: The rain fell.", "the rain fell"),
        ("sentence 2: wet", "wet"),
        ("'Quoted!'", "quoted"),
        ("a,  b ,c", "a b c"),
        ("", ""),
    ],
)
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_exact_match():
    assert exact_match(" Cold.", "cold") == 1.0
    assert exact_match("cold weather", "cold") == 0.0
    assert exact_match("forty-two", "forty two") == 1.0


def test_f1_hand_checked():
    # pred tokens {involve, oceans, and?} -> "involve the ocean" vs "involve oceans": common = 1 ("involve")
    assert f1("involve the ocean", "involve oceans") == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert f1("things that are red", "things that are red") == 1.0
    assert f1("blue", "red") == 0.0
    assert f1("", "") == 1.0
    assert f1("", "red") == 0.0


def test_exact_set():
    assert exact_set("cat, dog", "dog, cat") == 1.0
    assert exact_set("cat dog dog", "dog cat") == 1.0
    assert exact_set("cat", "dog, cat") == 0.0
    assert exact_set("cat, dog, emu", "dog, cat") == 0.0


def test_contains_whole_words():
    assert contains("it means happy, glad", "glad") == 1.0
    assert contains("gladly", "glad") == 0.0
    assert contains("very big house", "big house") == 1.0
    assert contains("anything", "") == 0.0


def test_score_takes_best_answer_and_uses_metric():
    assert score("em", "chien", ["le chien", "chien"]) == 1.0
    assert score("em", "chat", ["le chien", "chien"]) == 0.0
    assert score("contains", "big and large", "large") == 1.0
    assert score("f1", "a b", "a c") == pytest.approx(0.5)


def test_score_accepts_a_task_like_object():
    class T:
        metric = "exact_set"

    assert score(T(), "b a", "a b") == 1.0


def test_score_errors():
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        score("bleu", "a", "a")
    with pytest.raises(ValueError, match="at least one gold answer"):
        score("em", "a", [])


def test_metric_table():
    assert metric_for("common_concept") == "f1"
    assert metric_for("informal_to_formal") == "f1"
    assert metric_for("taxonomy_animal") == "exact_set"
    assert metric_for("orthography_starts_with") == "exact_set"
    assert metric_for("synonyms") == "contains"
    assert metric_for("antonyms") == "em"
    assert set(METRIC_BY_TASK.values()) == {"f1", "exact_set", "contains"}
