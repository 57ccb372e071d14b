"""izkit.studies.study (finding and archiving runs; paired differences, the Wilcoxon test, the bootstrap interval) and
izkit.studies.study_report (the Markdown summary of a study folder, its curves and figure)."""

from __future__ import annotations

import json
import math
import os

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from izkit.cli import main
from izkit.records import RunRecord
from izkit.replay import replay
from izkit.studies.study import bootstrap_ci, finished_runs, paired, wilcoxon_p
from izkit.studies.study_report import summarise

TEST = {"instructzero": [0.6, 0.5, 0.7, 0.4], "uniform": [0.4, 0.5, 0.3, 0.2], "manual": [0.1, 0.1, 0.1, 0.1]}


def _study(folder, done=True):
    """Four (task, seed) runs written as records: two tasks x two seeds, methods' test accuracies from TEST."""
    for k, (task, seed) in enumerate([("antonyms", 0), ("sum", 0), ("antonyms", 1), ("sum", 1)]):
        rec = RunRecord.create(folder / f"{task}-seed{seed}" / "record.jsonl",
                               {"config": {"task": task, "seed": seed}, "objective": "accuracy"})
        for method, scores in TEST.items():
            for i in range(3 if method != "manual" else 1):  # instruction "b" scored twice by uniform: 2 distinct
                text = "b" if (method == "uniform" and i == 2) else "abc"[i]
                rec.append({"kind": "eval", "method": method, "round": 0, "index": i, "z": None,
                            "instruction": text, "scores": [0.1 * i], "predictions": [""], "mean": 0.1 * i})
            rec.append({"kind": "test", "method": method, "objective": "accuracy", "instruction": "c",
                        "mean": scores[k]})
        if done or k < 3:
            rec.append({"kind": "done"})


def test_paired_differences_and_counts(tmp_path):
    _study(tmp_path)
    pr = paired(finished_runs(tmp_path), "instructzero", "uniform", "accuracy")
    assert np.allclose(sorted(pr.diffs), sorted([0.2, 0.0, 0.4, 0.2]))
    assert (pr.wins, pr.ties, pr.losses) == (3, 1, 0) and pr.mean == pytest.approx(0.2)
    assert pr.ci[0] <= pr.mean <= pr.ci[1]


def test_wilcoxon_matches_scipy_and_is_nan_without_differences():
    from scipy.stats import wilcoxon

    d = np.array([0.3, -0.1, 0.2, 0.25, 0.05, 0.4])
    assert wilcoxon_p(d) == pytest.approx(wilcoxon(d).pvalue)
    assert math.isnan(wilcoxon_p(np.zeros(5))) and math.isnan(wilcoxon_p(np.array([0.2])))


def test_bootstrap_interval_is_seeded_and_narrows_with_more_pairs():
    rng = np.random.default_rng(0)
    few, many = rng.normal(0.1, 0.2, 8), rng.normal(0.1, 0.2, 200)
    assert bootstrap_ci(few, seed=3) == bootstrap_ci(few, seed=3)
    lo_f, hi_f = bootstrap_ci(few)
    lo_m, hi_m = bootstrap_ci(many)
    assert hi_m - lo_m < hi_f - lo_f and lo_m < many.mean() < hi_m


def test_summary_names_methods_distinct_counts_and_the_paired_test(tmp_path):
    _study(tmp_path, done=False)  # the last run is unfinished: left out
    text = summarise(tmp_path)
    assert text.startswith("3 finished runs") and "| antonyms | 0.650 +- 0.071 | 0.350 +- 0.071 |" in text
    assert "InstructZero 3.0 (3-3), Uniform 2.0 (2-2), Manual (generator) 1.0 (1-1)" in text
    assert "| InstructZero - Uniform | 3 | +0.200 |" in text and "| 3 / 0 / 0 |" in text
    dev = text.split("The same on the accuracy each search kept its instruction on")[1]  # both reached 0.2 on dev
    assert "| InstructZero - Uniform | 3 | +0.000 |" in dev and "| 0 / 3 / 0 |" in dev and "Manual" not in dev


def test_summary_command_writes_the_report_and_figure(tmp_path, capsys):
    _study(tmp_path)
    assert main(["summary", str(tmp_path)]) == 0
    assert "InstructZero - Manual (generator)" in capsys.readouterr().out
    assert (tmp_path / "summary.md").read_text().startswith("4 finished runs") and (tmp_path / "best_so_far.png").is_file()
    assert main(["summary", str(tmp_path / "empty")]) == 2
    assert "no finished run" in capsys.readouterr().err


def test_summary_counts_repeated_soft_prompts_and_tasks_at_the_hand_written_level(tmp_path):
    """Two runs of one task: InstructZero 0.6 and 0.4 on test, the hand-written instruction 0.5 and 0.5 (at least it on
    1 of 1 task); Uniform evaluates one z twice. The figure gets a test panel from the test_curve lines."""
    from izkit.studies.study import repeated_soft_prompts
    from izkit.studies.study_report import study_figure

    for seed, (iz, ref) in enumerate([(0.6, 0.5), (0.4, 0.5)]):
        rec = RunRecord.create(tmp_path / f"sum-seed{seed}" / "record.jsonl",
                               {"config": {"task": "sum", "seed": seed}, "objective": "accuracy"})
        for method, zs in (("instructzero", [[0.1], [0.2]]), ("uniform", [[0.3], [0.3]]), ("reference", [None])):
            for i, z in enumerate(zs):
                rec.append({"kind": "eval", "method": method, "round": i, "index": 0, "z": z, "instruction": f"v{i}",
                            "scores": [0.5], "predictions": [""], "mean": 0.5})
            score = {"instructzero": iz, "reference": ref}.get(method, 0.3)
            rec.append({"kind": "test", "method": method, "objective": "accuracy", "instruction": "v0", "mean": score})
            if method != "reference":
                for rnd in range(len(zs)):
                    rec.append({"kind": "test_curve", "method": method, "round": rnd, "n_distinct": rnd + 1,
                                "instruction": "v0", "dev": 0.5, "mean": score})
        rec.append({"kind": "done"})
    runs = finished_runs(tmp_path)
    assert [repeated_soft_prompts(r, "uniform") for r in runs] == [1, 1]
    assert [repeated_soft_prompts(r, "instructzero") for r in runs] == [0, 0]
    text = summarise(tmp_path)
    assert "soft prompts evaluated twice: InstructZero 0, Uniform 2." in text
    assert "at least the hand-written instruction's on 1 of 1 tasks" in text
    assert "| method | n = 1 | n = 2 |" in text  # the figure's numbers: best dev so far / the incumbent's test
    assert "| InstructZero | 0.500 / 0.500 | 0.500 / 0.500 |" in text and "| Uniform | 0.500 / 0.300 |" in text
    fig = study_figure(runs)
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "test accuracy of the incumbent"
    assert len(fig.axes[1].lines) == 3  # InstructZero, Uniform, the hand-written level


def test_summary_lists_each_run_its_best_instructions_and_the_recorded_work(tmp_path):
    """Per (task, seed): the methods' test scores and IZ - Uniform; the best dev instructions as table cells (a pipe
    escaped, a long one cut); the recorded work per run and per method, in minutes."""
    long = "return the larger animal of the two " * 5
    rec = RunRecord.create(tmp_path / "sum-seed2" / "record.jsonl",
                           {"config": {"task": "sum", "seed": 2}, "objective": "accuracy"})
    for method, text, test, seconds in (("instructzero", "add a | b", 0.75, 120.0), ("uniform", long, 0.5, 60.0)):
        rec.append({"kind": "proposal", "method": method, "round": 0, "seconds": seconds / 2})
        rec.append({"kind": "eval", "method": method, "round": 0, "index": 0, "z": [0.1], "instruction": text,
                    "scores": [1.0], "predictions": [""], "mean": 1.0, "seconds": seconds / 2})
        rec.append({"kind": "test", "method": method, "objective": "accuracy", "instruction": text, "mean": test})
    rec.append({"kind": "done", "seconds": 999.0})  # wall time, not summed again
    other = RunRecord.create(tmp_path / "sum-seed3" / "record.jsonl",  # a run without Uniform: a dash, no error
                             {"config": {"task": "sum", "seed": 3}, "objective": "accuracy"})
    other.append({"kind": "eval", "method": "instructzero", "round": 0, "index": 0, "z": [0.2], "instruction": "add",
                  "scores": [1.0], "predictions": [""], "mean": 1.0})
    other.append({"kind": "done"})
    text = summarise(tmp_path)
    assert "| sum | 3 | 'add' | - |" in text
    assert "| sum | 2 | 0.750 | 0.500 | +0.250 |" in text
    assert "| sum | 2 | 'add a \\| b' | 'return the larger animal" in text and "…' |" in text
    assert "1.5 min (min-max 0.0-3.0); per method (mean): InstructZero 1.0, Uniform 0.5." in text


def test_archive_drops_the_answers_text_and_summarises_the_same(tmp_path):
    """The archive keeps every line but the predictions; the study read from it is the study read from the records;
    an unfinished run is not archived."""
    from izkit.studies.study import archive

    live, kept = tmp_path / "live", tmp_path / "kept"
    _study(live, done=False)
    paths = archive(finished_runs(live), kept)
    assert sorted(p.parent.name for p in paths) == ["antonyms-seed0", "antonyms-seed1", "sum-seed0"]
    for p in paths:
        full = (live / p.parent.name / "record.jsonl").read_text().splitlines()
        slim = p.read_text().splitlines()
        assert len(slim) == len(full) and "predictions" not in p.read_text() and '"predictions"' in full[1]
        assert [json.loads(s) for s in slim] == [{k: v for k, v in json.loads(s).items() if k != "predictions"}
                                                for s in full]  # (these records have no proposal lines)
    assert summarise(kept).split("\n", 1)[1] == summarise(live).split("\n", 1)[1]
    assert not list(kept.rglob("*.tmp"))
    with pytest.raises(ValueError, match="sum-seed1.*not finished"):
        archive([replay(live / "sum-seed1")], kept)


def test_restore_fills_what_the_live_folder_lacks_and_replaces_only_an_unfinished_run(tmp_path):
    """A later sitting whose folder holds a partial copy of a pair the archive has finished takes the finished one
    (the partial set aside, not lost); a finished live run is never written over."""
    fcntl = pytest.importorskip("fcntl")
    from izkit.records import LOCK_NAME
    from izkit.studies.study import archive, restore

    _study(tmp_path / "done")
    kept = tmp_path / "kept"
    archive(finished_runs(tmp_path / "done"), kept)
    live = tmp_path / "live"
    _study(live, done=False)  # sum-seed1 unfinished here
    (live / "antonyms-seed1" / "record.jsonl").unlink()  # and antonyms-seed1 missing
    finished_before = (live / "sum-seed0" / "record.jsonl").read_bytes()
    partial = (live / "sum-seed1" / "record.jsonl").read_bytes()
    fd = os.open(live / "sum-seed1" / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as another process still writing it holds the lock: left alone
    try:
        assert [p.parent.name for p in restore(kept, live)] == ["antonyms-seed1"]
    finally:
        os.close(fd)
    assert (live / "sum-seed1" / "record.jsonl").read_bytes() == partial
    assert [p.parent.name for p in restore(kept, live)] == ["sum-seed1"]
    assert (live / "sum-seed1" / "record.jsonl").read_bytes() == (kept / "sum-seed1" / "record.jsonl").read_bytes()
    assert (live / "sum-seed1" / "record.unfinished-1.jsonl").read_bytes() == partial
    assert (live / "sum-seed0" / "record.jsonl").read_bytes() == finished_before  # finished: its own
    assert restore(kept, live) == []
    (live / "sum-seed1" / "record.jsonl").write_text("not a record\n")  # unreadable: replaced as unfinished is
    assert [p.parent.name for p in restore(kept, live)] == ["sum-seed1"]
    assert (live / "sum-seed1" / "record.unfinished-2.jsonl").read_text() == "not a record\n"


def test_a_study_read_from_a_live_folder_and_its_archive_takes_each_run_once_the_first_folders_first(tmp_path):
    from izkit.studies.study import archive

    live, kept = tmp_path / "live", tmp_path / "kept"
    _study(live, done=False)  # sum-seed1 is unfinished here
    archive(finished_runs(live), kept)
    (live / "antonyms-seed0" / "record.jsonl").unlink()  # a run the live folder lost: the archive still has it
    rec = RunRecord.create(kept / "sum-seed1" / "record.jsonl",  # finished in an earlier sitting: from the archive
                           {"config": {"task": "sum", "seed": 1}, "objective": "accuracy"})
    rec.append({"kind": "eval", "method": "instructzero", "round": 0, "index": 0, "z": None, "instruction": "a",
                "scores": [1.0], "mean": 1.0})
    rec.append({"kind": "test", "method": "instructzero", "objective": "accuracy", "instruction": "a", "mean": 0.9})
    rec.append({"kind": "done"})
    runs = finished_runs([live, kept])
    assert [r.record.path.parent.name for r in runs] == ["antonyms-seed0", "antonyms-seed1", "sum-seed0", "sum-seed1"]
    assert [r.record.path.parent.parent.name for r in runs] == ["kept", "live", "live", "kept"]
    assert summarise([live, kept]).startswith(f"4 finished runs in {live} + {kept};")


def test_summary_command_reads_several_folders_and_archives(tmp_path, capsys):
    live, kept = tmp_path / "live", tmp_path / "kept"
    _study(live)
    assert main(["summary", str(live), str(kept), "--archive", str(kept)]) == 0
    out = capsys.readouterr().out
    assert "4 finished runs archived without their answers' text in" in out
    assert len(list(kept.glob("*/record.jsonl"))) == 4 and (live / "summary.md").is_file()
    assert main(["summary", str(kept)]) == 0 and "InstructZero - Uniform | 4 |" in capsys.readouterr().out


def test_reading_a_study_never_changes_a_record_another_process_is_writing(tmp_path):
    """A reader that meets a line half written (the writer is mid-append) leaves it alone: cutting it would cut the
    writer's line, as opening a record to resume it does."""
    _study(tmp_path)
    path = tmp_path / "sum-seed1" / "record.jsonl"
    with open(path, "a") as f:
        f.write('{"kind": "eval", "method": "instr')  # a writer caught mid-line
    before = path.read_bytes()
    assert len(finished_runs(tmp_path)) == 4
    assert path.read_bytes() == before


def test_archive_drops_a_proposals_soft_prompts_only_where_the_eval_lines_repeat_them():
    from izkit.studies.study import _slim

    lines = [{"kind": "header"},
             {"kind": "proposal", "method": "uniform", "round": 0, "z": [[0.1], [0.2]], "instructions": ["a", "b"]},
             {"kind": "proposal", "method": "uniform", "round": 1, "z": [[0.3], [0.4]], "instructions": ["c", "d"]}]
    lines += [{"kind": "eval", "method": "uniform", "round": r, "index": i, "z": z, "predictions": ["x"]}
              for r, i, z in ((0, 0, [0.1]), (0, 1, [0.2]), (1, 0, [0.3]), (1, 1, [0.5]))]  # round 1: index 1 differs
    slim = _slim(lines)
    assert "z" not in slim[1] and slim[2]["z"] == [[0.3], [0.4]] and slim[1]["instructions"] == ["a", "b"]
    assert all("predictions" not in line and line["z"] for line in slim[3:]) and lines[3]["predictions"] == ["x"]


def test_a_task_whose_mean_equals_the_hand_written_score_counts_as_at_least_it(tmp_path):
    """(0.69 + 0.63) / 2 is 0.6599999999999999 in floating point: still 'at least' a hand-written 0.66."""
    for seed, iz in enumerate([0.69, 0.63]):
        rec = RunRecord.create(tmp_path / f"larger_animal-seed{seed}" / "record.jsonl",
                               {"config": {"task": "larger_animal", "seed": seed}, "objective": "accuracy"})
        for method, score in (("instructzero", iz), ("reference", 0.66)):
            rec.append({"kind": "eval", "method": method, "round": 0, "index": 0, "z": None, "instruction": "v",
                        "scores": [1.0], "mean": 1.0})
            rec.append({"kind": "test", "method": method, "objective": "accuracy", "instruction": "v", "mean": score})
        rec.append({"kind": "done"})
    assert (0.69 + 0.63) / 2 < 0.66
    assert "at least the hand-written instruction's on 1 of 1 tasks" in summarise(tmp_path)


def test_the_table_and_the_figure_draw_on_one_curve_aggregation(tmp_path):
    """Runs of unequal length are cut to the shortest; the table's numbers are the figure's points after each round."""
    from izkit.studies.study_report import curve_table, method_curves, study_figure

    for seed, means in enumerate([[0.1, 0.3, 0.2, 0.5], [0.2, 0.1, 0.4]]):
        rec = RunRecord.create(tmp_path / f"sum-seed{seed}" / "record.jsonl",
                               {"config": {"task": "sum", "seed": seed}, "objective": "accuracy"})
        for i, mean in enumerate(means):
            rec.append({"kind": "eval", "method": "uniform", "round": i // 2, "index": i % 2, "z": [0.1 * i],
                        "instruction": f"v{i}", "scores": [mean], "predictions": [""], "mean": mean})
        for rnd in range(2):
            rec.append({"kind": "test_curve", "method": "uniform", "round": rnd, "n_distinct": 2 * rnd + 2,
                        "instruction": "v0", "dev": 0.0, "mean": 0.1 * (rnd + 1 + seed)})
        rec.append({"kind": "done"})
    runs = finished_runs(tmp_path)
    cv = method_curves(runs, "uniform")
    np.testing.assert_allclose(cv.dev, [[0.1, 0.3, 0.3], [0.2, 0.2, 0.4]])  # best so far, cut at 3 (the shorter)
    np.testing.assert_allclose(cv.test_n, [2, 4])
    np.testing.assert_allclose(cv.test, [[0.1, 0.2], [0.2, 0.3]])
    counts, dev, test = cv.at_rounds()  # n = 4 is past the shorter run's curve: left out
    assert counts.tolist() == [2] and dev == pytest.approx([0.25]) and test == pytest.approx([0.15])
    table = curve_table(runs, ["uniform"])
    assert "| method | n = 2 |" in table and "| Uniform | 0.250 / 0.150 |" in table
    fig = study_figure(runs, ["uniform"])
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), cv.dev.mean(0))
    np.testing.assert_allclose(fig.axes[1].lines[0].get_xdata(), cv.test_n)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), cv.test.mean(0))


def test_a_halving_study_reports_the_kept_instruction_the_paper_row_and_test_against_answers(tmp_path):
    """With halving the kept instruction is the selection line's pick (judged on its last rung), not the best eval on
    the search's few examples; the paper-allocation row gets its own hand-written count; the answers figure draws one
    point per number of answers allowed and method at the mean test score of the kept instructions."""
    from izkit.studies.study_report import answers_figure

    for allowed, (iz, paper) in {1000: (0.6, 0.4), 3000: (0.8, 0.5)}.items():
        for seed in (0, 1):
            rec = RunRecord.create(tmp_path / str(allowed) / f"sum-seed{seed}" / "record.jsonl",
                                   {"config": {"task": "sum", "seed": seed}, "objective": "accuracy"})
            for method, score in (("instructzero", iz + 0.1 * seed), ("paper", paper), ("reference", 0.55)):
                for i, text in enumerate(("lucky", "sound")):  # "lucky" is best on the search's examples
                    rec.append({"kind": "eval", "method": method, "round": 0, "index": i, "z": None,
                                "instruction": text, "scores": [1.0 - 0.5 * i], "mean": 1.0 - 0.5 * i})
                if method == "instructzero":
                    rec.append({"kind": "selection", "method": method, "instruction": "sound", "mean": 0.7})
                rec.append({"kind": "test", "method": method, "objective": "accuracy", "instruction": "x",
                            "mean": score})
            rec.append({"kind": "done"})
    text = summarise(tmp_path / "3000")
    assert "| sum | 0 | 'sound' | 'lucky' |" in text  # halving's pick for InstructZero, the best dev for the paper row
    assert "InstructZero's mean test accuracy is at least the hand-written instruction's on 1 of 1 tasks" in text
    assert "InstructZero (paper)'s mean test accuracy is at least the hand-written instruction's on 0 of 1" in text
    assert "| InstructZero - InstructZero (paper) | 2 | +0.350 |" in text
    fig = answers_figure({b: finished_runs(tmp_path / str(b)) for b in (1000, 3000)})
    ax = fig.axes[0]
    lines = {c.get_label().rsplit(" (", 1)[0]: c.lines[0] for c in ax.containers}  # the methods: error bars
    lines |= {ln.get_label().rsplit(" (", 1)[0]: ln for ln in ax.lines if not ln.get_label().startswith("_")}
    x = np.asarray(lines["InstructZero"].get_xdata()) - [1000, 3000]  # side by side: the same small shift at both
    assert x[0] == x[1] and 0 < abs(x[0]) < 200
    assert len({float(ln.get_xdata()[0]) for name, ln in lines.items() if name != "Hand-written"}) == len(lines) - 1
    np.testing.assert_allclose(lines["InstructZero"].get_ydata(), [0.65, 0.85])
    np.testing.assert_allclose(lines["InstructZero (paper)"].get_ydata(), [0.4, 0.5])
    np.testing.assert_allclose(lines["Hand-written"].get_ydata(), [0.55, 0.55])  # once per (task, seed)
    assert [c.get_label() for c in ax.containers][0] == "InstructZero (2/2 runs)"


def test_the_archived_study_is_found_from_a_clones_notebooks_when_izkit_is_installed_elsewhere(tmp_path, monkeypatch):
    """izkit installed from a wheel (not a clone) finds bench/data/ above the working folder, as notebook 9 runs from
    a clone's notebooks/; anywhere else, an error says how to point at it; $IZKIT_STUDY wins."""
    import izkit.studies.study as study

    monkeypatch.delenv(study.STUDY_ENV, raising=False)
    monkeypatch.setattr(study, "_REPO_DATA", tmp_path / "site-packages" / "bench" / "data")  # not a clone
    (tmp_path / "clone" / "bench" / "data" / "study").mkdir(parents=True)
    (tmp_path / "clone" / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "clone" / "notebooks")
    assert study.archived_study("study") == tmp_path / "clone" / "bench" / "data" / "study"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="set IZKIT_STUDY to a folder that holds study/"):
        study.archived_study("study")
    monkeypatch.setenv(study.STUDY_ENV, str(tmp_path / "clone" / "bench" / "data"))
    assert study.archived_study("study") == tmp_path / "clone" / "bench" / "data" / "study"
    with pytest.raises(FileNotFoundError, match=r"\$IZKIT_STUDY="):
        study.archived_study("study-answers")
