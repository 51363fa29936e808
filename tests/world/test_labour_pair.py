"""The CPU main job's shipped pair and its bookkeeping (no training): the rebuilt world matches the pair's
tokenizer, another world in the run folder is refused, and the summary and race numbers come from the right steps."""

import json

import pytest

from duet_verl.experiments.runs import HELDOUT
from duet_verl.worlds import labour as lw
from duet_verl.worlds import labour_pair
from duet_verl.worlds.labour import build_labour_world, load_labour_world
from duet_verl.worlds.labour_pair import PAIR, PAIR_WORLD, prepare, race_result, report


def test_the_pair_ships_and_its_world_rebuilds_to_its_tokenizer(tmp_path):
    world, models = prepare(tmp_path)
    assert json.loads(world["facts"].read_text())["steps_left_out"] == PAIR_WORLD["steps_left_out"]
    assert load_labour_world(tmp_path / "world").seed == PAIR_WORLD["seed"]
    for name in ("large", "small"):
        assert models[name] == PAIR / name
        assert (models[name] / "model.safetensors").stat().st_size > 1_000_000
        assert json.loads((models[name] / "config.json").read_text())["dtype"] == "float32"
    assert prepare(tmp_path) == (world, models), "a second run reuses the built world"


def test_another_world_in_the_run_folder_is_refused(tmp_path):
    build_labour_world(tmp_path / "world", seed=0)
    with pytest.raises(SystemExit, match="holds another world"):
        prepare(tmp_path)


def test_a_world_that_no_longer_matches_the_pair_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(labour_pair, "PAIR_WORLD", {"seed": 0, "steps_left_out": 0.1})
    with pytest.raises(RuntimeError, match="differs from the one the shipped pair learnt"):
        prepare(tmp_path)


def duet_step(length: float, accuracy: float, lam: float) -> dict[str, float]:
    return {"duet/large_response_length_mean": length, "duet/penalised_length_mean": length,
            "duet/small_accuracy": accuracy, "duet/lambda": lam}  # fmt: skip


def validation(accuracy: float, tokens: float) -> dict[str, float]:
    return {HELDOUT: accuracy, labour_pair.HELDOUT_TOKENS: tokens}


def test_report_and_race_read_first_and_last_steps():
    steps = labour_pair.RACE.steps
    duet = {0: validation(1.0, 75.0)}
    for step in range(1, steps + 1):
        duet[step] = duet_step(80.0 if step <= 4 else 30.0, 0.9, 1.0)
    duet[steps] |= validation(0.98, 23.0)
    penalty = labour_pair.RACE_LAMBDA * 40 / 24  # λ·L/B: the score M alone is logged with
    alone = {s: {"response_length/mean": 40.0, "critic/score/mean": 0.5 - penalty} for s in range(1, steps + 1)}
    result = race_result({"duet": duet, "alone": alone})
    assert result["duet_length_ratio"] == pytest.approx(30 / 80)
    assert result["alone_accuracy"] == pytest.approx(0.5)
    assert result["alone_vs_duet_tokens_per_correct"] == pytest.approx((40 / 0.5) / (30 / 0.9))
    assert (result["heldout_accuracy_before"], result["heldout_large_tokens_after"]) == (1.0, 23.0)
    text = report(duet, labour_pair.RACE)
    assert "80.0 →   30.0 tokens (0.38×)" in text and "75.0 →   23.0" in text
    assert f"{steps} steps (first 4 steps → last 4 steps)" in text


def test_a_short_run_reports_halves_not_overlapping_windows():
    duet = {0: validation(1.0, 75.0), 1: duet_step(80.0, 0.9, 0.0), 2: duet_step(60.0, 0.8, 0.1)}
    duet[2] |= validation(1.0, 70.0)
    text = report(duet, labour_pair.RACE)
    assert "2 steps (first 1 step → last 1 step)" in text and "80.0 →   60.0 tokens (0.75×)" in text


def test_the_shipped_m_works_the_sums_from_the_right_fact(tmp_path):
    """An oracle M (the right fact alone as the signal): the shipped m answers almost every held-out question, and a
    wrong fact leads it to the wrong sum (it reads the signal, it does not know the table)."""
    world, models = prepare(tmp_path)
    assert lw.oracle_small_accuracy(world["facts"].parent, models["small"]) >= 0.9
    questions = lw.load_labour_world(world["facts"].parent).questions("test")
    right = {"question": questions[0].text, "signal": lw.fact_sentence(questions[0].name, questions[0].value)}
    wrong = {"question": questions[1].text, "signal": "I will check it again."}
    records = [
        {**right, "correct": 1.0},
        {**right, "correct": 0.0},
        {**wrong, "correct": 0.0},
        {**wrong, "correct": 0.0},
    ]
    facts = lw.signal_facts(lw.load_labour_world(world["facts"].parent), records)
    assert facts == {"right_fact_share": 0.5, "accuracy_with_right_fact": 0.5, "accuracy_without_right_fact": 0.0}
