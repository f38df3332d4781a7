"""The Triton tuning benchmark's choice among measured configurations."""

from benchmarks.triton_tuning import recommend


def _row(instances: int, delay: int, rate: float, p99: float) -> dict:
    return {"instances": instances, "max_queue_delay_us": delay, "items_per_s": rate, "p99_ms": p99}


def test_simplest_configuration_within_noise_of_the_best_wins() -> None:
    rows = [_row(1, 0, 490, 57), _row(1, 2000, 486, 52), _row(2, 8000, 500, 55), _row(2, 0, 300, 40)]
    assert recommend(rows, p99_budget_ms=100) == rows[0]  # 490 is within 5 % of 500, and simpler


def test_a_clearly_faster_configuration_wins_and_the_latency_budget_is_respected() -> None:
    rows = [_row(1, 0, 400, 57), _row(2, 8000, 500, 55), _row(2, 2000, 900, 250)]
    assert recommend(rows, p99_budget_ms=100) == rows[1]  # 900/s breaks the p99 budget
    assert recommend(rows, p99_budget_ms=10) == rows[1]  # nothing within budget: the lowest p99
