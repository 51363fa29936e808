"""The frontier's arithmetic: params-weighted cost, parameter counts read from safetensors headers, and the
target's verdict on rows where it is met, missed on each of its conditions, or undefined."""

import pytest

from duet_verl.testing import frontier


def row(accuracy: float, large_tokens: float, small_tokens: float = 0.0, small_per_large: float = 0.6) -> dict:
    return {
        "accuracy": accuracy,
        "large_tokens": large_tokens,
        "small_tokens": small_tokens,
        "cost_world": frontier.cost(large_tokens, small_tokens, small_per_large),
        "cost_paper": frontier.cost(large_tokens, small_tokens, frontier.PAPER_RATIO),
    }


def rows(duet: dict, **single: dict) -> dict:
    return {"warm_large": row(0.99, 80), "grpo": row(0.99, 78), "duet": duet, **single}


def test_cost_counts_small_tokens_at_their_size():
    assert frontier.cost(80, 0, 0.6) == 80
    assert frontier.cost(20, 40, 0.5) == 40
    assert frontier.cost(20, 40, frontier.PAPER_RATIO) == pytest.approx(20 + 40 * 0.075)


def test_parameter_count_reads_the_saved_weights(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, str(tmp_path / "model.safetensors"))
    save_file({"c": torch.zeros(2, 2, 2)}, str(tmp_path / "model-2.safetensors"))
    assert frontier.parameter_count(tmp_path) == 12 + 5 + 8
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors"):
        frontier.parameter_count(tmp_path / "missing")


def test_target_met_when_duet_halves_the_shortest_penalised_run_that_keeps_accuracy():
    result = frontier.target(rows(row(0.98, 25, 45, 0.1), penalty_1=row(0.975, 60), penalty_2=row(0.5, 20)))
    assert result["met"]
    assert result["shortest_penalised_keeping_accuracy"] == "penalty_1"  # penalty_2 is shorter but lost accuracy
    assert result["single_model_runs_keeping_accuracy"] == ["grpo", "penalty_1", "warm_large"]
    assert result["large_tokens_vs_shortest_penalised"] == pytest.approx(25 / 60)
    assert result["cost_paper_cheapest_single_model"] == "penalty_1"


@pytest.mark.parametrize(
    ("duet", "penalised", "failed"),
    [
        (row(0.95, 25, 45, 0.1), row(0.975, 60), "duet_keeps_accuracy"),  # DUET lost 4 points
        (row(0.98, 35, 45, 0.1), row(0.975, 60), "large_tokens_vs_shortest_penalised"),  # 0.58 of the penalised
        (row(0.98, 25, 45, 0.9), row(0.975, 60), "cost_world_vs_cheapest_single_model"),  # m's tokens cost too much
    ],
)
def test_target_missed_names_the_condition(duet, penalised, failed):
    result = frontier.target(rows(duet, penalty_1=penalised))
    assert not result["met"]
    value = result[failed]
    assert value is False or value >= 0.5


def test_target_without_a_penalised_run_that_keeps_accuracy_is_not_met():
    result = frontier.target(rows(row(0.98, 20, 40, 0.1), penalty_1=row(0.6, 30)))
    assert result["shortest_penalised_keeping_accuracy"] is None
    assert result["large_tokens_vs_shortest_penalised"] is None
    assert not result["met"]


def test_plots_write_their_files(tmp_path):
    labels = {"warm_large": "M", "grpo": "GRPO", "duet": "DUET"}
    table = rows(row(0.98, 25, 45))
    frontier.plot_pareto({0: table, 1: table}, labels, tmp_path / "pareto.png")
    curves = {"duet": {1: {"large_length": 80, "accuracy": 0.9, "lambda": 0.1}}, "grpo": {1: {"large_length": 78}}}
    frontier.plot_curves(curves, labels, tmp_path / "curves.png")
    assert (tmp_path / "pareto.png").stat().st_size > 1000 and (tmp_path / "curves.png").stat().st_size > 1000
