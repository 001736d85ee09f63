"""Unit tests of W2's rate search, without a broker:
python3 -m unittest discover -s scripts/bench
"""

import unittest

from workloads import Ladder


def search(limit: float, start: float = 100.0, refine: int = 2, max_steps: int = 14, flaky: set[int] | None = None):
    """Runs a ladder against a mode that sustains every rate up to `limit`; the step numbers in
    `flaky` fail once whatever their rate. Returns the rates run, in order, and the ladder."""
    ladder, rates = Ladder(start, 1.25, refine, max_steps), []
    while ladder.rate is not None:
        rates.append(ladder.rate)
        ladder.record(ladder.rate <= limit and len(rates) not in (flaky or set()))
    return rates, ladder


class LadderTests(unittest.TestCase):
    def test_climbs_then_bisects_between_the_last_rate_kept_and_the_first_failed_twice(self):
        rates, ladder = search(limit=170.0)
        # 100 and 125 kept, 156.25 kept, 195.3 failed twice, then 175.8 (fails twice), 166.0 (kept).
        self.assertEqual([round(r, 1) for r in rates], [100.0, 125.0, 156.2, 195.3, 195.3, 175.8, 175.8, 166.0])
        self.assertAlmostEqual(ladder.sustained, 166.015625)
        self.assertAlmostEqual(ladder.failed, 175.78125)

    def test_without_refinement_it_is_the_plain_climb(self):
        rates, ladder = search(limit=170.0, refine=0)
        self.assertEqual([round(r, 1) for r in rates], [100.0, 125.0, 156.2, 195.3, 195.3])
        self.assertAlmostEqual(ladder.sustained, 156.25)

    def test_one_failure_is_run_again_and_does_not_end_the_climb(self):
        rates, ladder = search(limit=170.0, refine=0, flaky={2})
        self.assertEqual([round(r, 1) for r in rates], [100.0, 125.0, 125.0, 156.2, 195.3, 195.3])
        self.assertAlmostEqual(ladder.sustained, 156.25)

    def test_halves_while_nothing_was_kept_and_gives_up_after_three_halvings(self):
        rates, ladder = search(limit=30.0)
        self.assertEqual([round(r, 1) for r in rates[:6]], [100.0, 100.0, 50.0, 50.0, 25.0, 31.2])
        self.assertLessEqual(ladder.sustained, 30.0)
        rates, ladder = search(limit=1.0)
        self.assertEqual(rates, [100.0, 100.0, 50.0, 50.0, 25.0, 25.0, 12.5, 12.5])
        self.assertIsNone(ladder.sustained)

    def test_stops_bisecting_when_the_bounds_are_within_three_percent(self):
        rates, ladder = search(limit=124.0, start=100.0, refine=10)
        self.assertLessEqual(ladder.failed / ladder.sustained, Ladder.CLOSE_ENOUGH)
        self.assertLess(len(rates), 14)
        self.assertLessEqual(ladder.sustained, 124.0)
        self.assertGreater(ladder.sustained, 124.0 / Ladder.CLOSE_ENOUGH)

    def test_never_runs_more_than_max_steps(self):
        rates, _ = search(limit=1e12, max_steps=6)
        self.assertEqual(len(rates), 6)


if __name__ == "__main__":
    unittest.main()
