"""The frontier's arithmetic: params-weighted cost, parameter counts read from safetensors headers, the target's
verdict on rows where it is met or missed on each of its conditions, the collapse rates and the Pareto front."""

import pytest

from duet_verl.experiments import frontier


def row(accuracy: float, large_tokens: float, small_tokens: float = 0.0, role: str = "single", ratio: float = 0.6):
    return {
        "role": role,
        "accuracy": accuracy,
        "large_tokens": large_tokens,
        "small_tokens": small_tokens,
        "cost_world": frontier.cost(large_tokens, small_tokens, ratio),
        "cost_paper": frontier.cost(large_tokens, small_tokens, frontier.PAPER_RATIO),
    }


def duet(accuracy: float, large_tokens: float, small_tokens: float = 45, ratio: float = 0.1) -> dict:
    return row(accuracy, large_tokens, small_tokens, "duet", ratio)


def rows(**systems: dict) -> dict:
    """A seed's rows: warm M alone at both decodings (the floor: 0.99 − 0.02), the warm pair, and ``systems``."""
    warm = {"warm_large": row(0.97, 80, role="warm_single"), "warm_large_greedy": row(0.99, 79, role="warm_single")}
    return {**warm, "warm_duet": row(0.99, 80, 45, "reference"), **systems}


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


def test_target_met_when_duets_shortest_run_halves_the_shortest_single_model_that_keeps_accuracy():
    seed = rows(penalty_1=row(0.975, 60), penalty_1_greedy=row(0.98, 58), penalty_2=row(0.5, 20),
                duet_1=duet(0.98, 25), duet_2=duet(0.99, 28), duet_3=duet(0.5, 15))  # fmt: skip
    result = frontier.target(seed)
    assert result["met"] and result["accuracy_floor"] == pytest.approx(0.97)
    assert result["shortest_single_model"] == "penalty_1_greedy"  # penalty_2 is shorter but lost accuracy
    assert result["single_model_rows_keeping_accuracy"] == ["penalty_1", "penalty_1_greedy", "warm_large",
                                                            "warm_large_greedy"]  # fmt: skip
    assert result["shortest_duet"] == "duet_1" and result["duet_rows_keeping_accuracy"] == ["duet_1", "duet_2"]
    assert result["large_tokens_vs_shortest_single_model"] == pytest.approx(25 / 58)
    assert result["cost_paper_cheapest_single_model"] == "penalty_1_greedy"


@pytest.mark.parametrize(
    ("duet_row", "failed"),
    [
        (duet(0.95, 25), "shortest_duet"),  # DUET lost 4 points
        (duet(0.98, 35), "large_tokens_vs_shortest_single_model"),  # 0.6 of the single model's tokens
        (duet(0.98, 25, ratio=0.9), "cost_world_vs_cheapest_single_model"),  # m's tokens cost too much
    ],
)
def test_target_missed_names_the_condition(duet_row, failed):
    result = frontier.target(rows(penalty_1=row(0.975, 58), duet_1=duet_row))
    assert not result["met"]
    assert result[failed] is None or result[failed] > 0.5


def test_without_a_trained_single_model_keeping_accuracy_warm_m_is_the_bar():
    """Every penalised M alone lost accuracy: DUET is compared with warm M alone (the shorter decoding that keeps
    it), so the target can still be met."""
    result = frontier.target(rows(penalty_1=row(0.6, 30), duet_1=duet(0.98, 30)))
    assert result["shortest_single_model"] == "warm_large_greedy"
    assert result["large_tokens_vs_shortest_single_model"] == pytest.approx(30 / 79) and result["met"]


def test_collapse_rate_counts_seeds_where_a_systems_best_row_fell_below_the_floor():
    seeds = {0: rows(penalty_1=row(0.5, 20), penalty_1_greedy=row(0.98, 58), duet_1=duet(0.4, 10)),
             1: rows(penalty_1=row(0.5, 20), penalty_1_greedy=row(0.6, 30), duet_1=duet(0.99, 25)),
             2: rows(duet_1=duet(0.99, 25))}  # fmt: skip
    rates = frontier.collapse_rates(seeds, {"penalty_1": ["penalty_1", "penalty_1_greedy"], "duet_1": ["duet_1"]})
    assert rates["penalty_1"] == {"seeds": 2, "collapsed": 1, "rate": 0.5}  # seed 0 kept it greedy
    assert rates["duet_1"] == {"seeds": 3, "collapsed": 1, "rate": pytest.approx(1 / 3)}


def test_pareto_front_keeps_the_points_nothing_beats():
    points = [(60, 0.98), (25, 0.99), (20, 0.5), (30, 0.6), (80, 0.99)]
    assert frontier.pareto_front(points) == [(20, 0.5), (25, 0.99)]


def test_plots_write_their_files(tmp_path):
    labels = {"warm_large": "M", "grpo": "GRPO", "duet": "DUET"}
    table = rows(grpo=row(0.98, 78), duet=duet(0.98, 25))
    frontier.plot_pareto({0: table, 1: table}, labels, tmp_path / "pareto.png")
    curves = {"duet": {1: {"large_length": 80, "accuracy": 0.9, "lambda": 0.1}}, "grpo": {1: {"large_length": 78}}}
    frontier.plot_curves(curves, labels, tmp_path / "curves.png")
    assert (tmp_path / "pareto.png").stat().st_size > 1000 and (tmp_path / "curves.png").stat().st_size > 1000
