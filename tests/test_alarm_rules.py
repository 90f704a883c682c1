"""Every clause of every alarm rule, pinned: each test fails when its clause is dropped or its threshold moved.

The rules (`trainers.alarms.ALARMS`, docs/monitor.md) are fed made-up signals through
`Monitor.observe` and `Monitor.observe_training`, with values on both sides of each threshold.
"""

import math

import pytest

from trainers.config import TrainConfig
from trainers.alarms import ALARMS
from trainers.monitor import Monitor

LOG2 = math.log(2)
WARM = 10_000


def monitor(loss="gan-minimax", **thresholds):
    return Monitor(TrainConfig(loss=loss, device="cpu", alarm_after_images=WARM, **thresholds).resolved())


def healthy(**changes):
    """Signals of an evaluation that raises nothing, with ``changes``."""
    signals = {"finite": True, "js_bound": 0.3, "grad_norm_g": 1.0, "grad_norm_x": 1.0, "diversity_fake": 0.5,
               "diversity_real": 0.6, "modes_covered": 25, "modes_real": 30, "sliced_pixels": 0.01,
               "sliced_pixels_floor": 0.002}
    signals.update(changes)
    return {key: value for key, value in signals.items() if value is not None}


def fired(monitor_, evaluations, images_seen=WARM):
    """The alarm names raised at each evaluation."""
    return [[alarm["name"] for alarm in monitor_.observe(signals, images_seen)["alarms"]] for signals in evaluations]


def test_the_documented_alarms_are_the_ones_raised():
    assert set(ALARMS) == {"vanishing_gradient", "mode_collapse", "diverged", "critic_unbounded", "not_learning"}


# --- vanishing_gradient, the evaluations' route: JS bound near log 2 and a collapsed gradient, for patience evaluations


def saturated(js_bound=LOG2 - 0.01, gradient=0.05):
    return healthy(js_bound=js_bound, grad_norm_g=gradient, grad_norm_x=gradient)


UNTRAINED = healthy(js_bound=0.0, grad_norm_g=100.0, grad_norm_x=100.0)  # the first evaluation: not a peak of training


def test_vanishing_gradient_needs_the_js_bound_within_the_margin_of_log_2():
    # the second evaluation sets the gradients' peak (1.0); the margin is 0.02 nats
    assert fired(monitor(alarm_patience=1), [UNTRAINED, healthy(), saturated(js_bound=LOG2 - 0.02)])[-1] == ["vanishing_gradient"]
    assert fired(monitor(alarm_patience=1), [UNTRAINED, healthy(), saturated(js_bound=LOG2 - 0.0201)])[-1] == []


def test_vanishing_gradient_needs_a_gradient_under_a_tenth_of_its_peak_since_the_first_evaluation():
    assert fired(monitor(alarm_patience=1), [UNTRAINED, healthy(), saturated(gradient=0.0999)])[-1] == ["vanishing_gradient"]
    assert fired(monitor(alarm_patience=1), [UNTRAINED, healthy(), saturated(gradient=0.1)])[-1] == []
    # a gradient at half its peak of training is no collapse, whatever the untrained networks' was
    assert fired(monitor(alarm_patience=1), [UNTRAINED, healthy(), saturated(gradient=0.5)])[-1] == []


def test_vanishing_gradient_reads_the_generators_gradient_when_it_is_measured():
    # the input gradient collapsed, the generator's did not (the non-saturating loss, which goes on learning): silent
    input_collapsed = healthy(js_bound=LOG2 - 0.01, grad_norm_g=1.0, grad_norm_x=0.05)
    assert fired(monitor(alarm_patience=1), [UNTRAINED, healthy(), input_collapsed])[-1] == []
    generator_collapsed = healthy(js_bound=LOG2 - 0.01, grad_norm_g=0.05, grad_norm_x=1.0)
    assert fired(monitor(alarm_patience=1), [UNTRAINED, healthy(), generator_collapsed])[-1] == ["vanishing_gradient"]


def test_vanishing_gradient_reads_the_input_gradient_where_the_generators_is_not_measured():
    evaluations = [healthy(grad_norm_g=None, **changes) for changes in
                   ({"js_bound": 0.0, "grad_norm_x": 100.0}, {}, {"js_bound": LOG2 - 0.01, "grad_norm_x": 0.05})]
    assert fired(monitor(alarm_patience=1), evaluations)[-1] == ["vanishing_gradient"]
    evaluations[-1] = healthy(grad_norm_g=None, js_bound=LOG2 - 0.01, grad_norm_x=0.5)
    assert fired(monitor(alarm_patience=1), evaluations)[-1] == []


def test_vanishing_gradient_waits_for_patience_evaluations_in_a_row_then_fires_once():
    evaluations = [UNTRAINED, healthy(), saturated(), saturated(), healthy(), saturated(), saturated(), saturated(),
                   saturated()]
    assert fired(monitor(alarm_patience=3), evaluations) == [[], [], [], [], [], [], [], ["vanishing_gradient"], []]


def test_no_alarm_but_a_nan_before_the_warm_up():
    assert fired(monitor(alarm_patience=1), [UNTRAINED, healthy(), saturated()], images_seen=WARM - 1) == [[], [], []]
    assert fired(monitor(alarm_patience=1), [healthy(finite=False)], images_seen=0) == [["diverged"]]


def test_a_wgan_has_no_js_bound_and_no_vanishing_gradient():
    evaluations = [healthy(js_bound=None, w_estimate=0.1), healthy(js_bound=None, w_estimate=0.1, grad_norm_g=0.0,
                                                                   grad_norm_x=0.0)]
    assert fired(monitor("wgan", alarm_patience=1), evaluations) == [[], []]


# --- vanishing_gradient, the train lines' route: log 2 - loss_d / 2 within the margin of log 2, for saturation_lines lines


def lines(monitor_, losses, images_seen=WARM):
    return [[alarm["name"] for alarm in monitor_.observe_training({"loss_d": loss}, images_seen)] for loss in losses]


def test_a_train_line_is_saturated_at_a_discriminator_loss_of_twice_the_margin_or_less():
    assert lines(monitor(saturation_lines=1), [0.04]) == [["vanishing_gradient"]]
    assert lines(monitor(saturation_lines=1), [0.0401]) == [[]]


def test_train_lines_must_be_saturated_20_times_in_a_row_and_after_the_warm_up():
    broken = [0.0] * 19 + [0.1] + [0.0] * 19
    assert lines(monitor(), broken) == [[]] * 39
    assert lines(monitor(), broken + [0.0, 0.0])[-2:] == [["vanishing_gradient"], []]
    assert lines(monitor(saturation_lines=1), [0.0], images_seen=WARM - 1) == [[]]


# --- mode_collapse: low diversity (or few modes) that has fallen from its best, for patience evaluations


def test_mode_collapse_by_diversity_needs_a_ratio_under_a_quarter_of_the_real_images():
    # best diversity 0.5; real 1.0; 0.24 is under a quarter of real and under half the best
    evaluations = [healthy(diversity_fake=0.5, diversity_real=1.0), healthy(diversity_fake=0.24, diversity_real=1.0)]
    assert fired(monitor(alarm_patience=1), evaluations) == [[], ["mode_collapse"]]
    evaluations[1] = healthy(diversity_fake=0.25, diversity_real=1.0)
    assert fired(monitor(alarm_patience=1), evaluations) == [[], []]


def test_mode_collapse_by_diversity_needs_a_fall_to_half_the_best():
    # 0.21 is under a quarter of the real images' diversity, but above half the best (0.4)
    evaluations = [healthy(diversity_fake=0.4, diversity_real=1.0), healthy(diversity_fake=0.21, diversity_real=1.0)]
    assert fired(monitor(alarm_patience=1), evaluations) == [[], []]
    evaluations[1] = healthy(diversity_fake=0.2, diversity_real=1.0)
    assert fired(monitor(alarm_patience=1), evaluations) == [[], ["mode_collapse"]]


def test_mode_collapse_by_modes_needs_under_half_the_real_modes_a_fall_to_half_their_best_and_of_diversity():
    def collapse(best_modes, modes, diversity=0.2):
        evaluations = [healthy(modes_covered=best_modes, diversity_fake=0.4),
                       healthy(modes_covered=modes, diversity_fake=diversity)]
        return fired(monitor(alarm_patience=1, collapse_diversity=0), evaluations)[-1] == ["mode_collapse"]

    assert collapse(28, 14) and not collapse(28, 15)  # under half the 30 real modes
    assert collapse(20, 10) and not collapse(20, 11)  # at most half the best
    assert not collapse(28, 14, diversity=0.2001)  # and the diversity at most half its best (0.4)


def test_mode_collapse_waits_for_patience_evaluations_and_the_warm_up():
    collapsed = healthy(modes_covered=2, diversity_fake=0.1)
    assert fired(monitor(alarm_patience=2), [healthy(), collapsed, healthy(), collapsed, collapsed, collapsed]) == \
        [[], [], [], [], ["mode_collapse"], []]
    assert fired(monitor(alarm_patience=1), [healthy(), collapsed], images_seen=WARM - 1) == [[], []]


# --- diverged: non-finite images at once; or the sliced distance rising patience times to 1.5x its lowest


def test_non_finite_images_are_diverged_at_once_and_once():
    assert fired(monitor(alarm_patience=3), [healthy(finite=False), healthy(finite=False)]) == [["diverged"], []]


def distances(values):
    return [healthy(sliced_pixels=value) for value in values]


def test_diverged_needs_a_rise_at_each_of_patience_evaluations():
    assert fired(monitor(alarm_patience=3), distances([1.0, 0.8, 0.9, 1.0, 1.21]))[-1] == ["diverged"]
    assert fired(monitor(alarm_patience=3), distances([1.0, 0.8, 0.9, 0.9, 1.21]))[-1] == []  # a level step is no rise
    assert fired(monitor(alarm_patience=3), distances([1.0, 0.8, 1.0, 1.21]))[-1] == []  # two rises only


def test_diverged_needs_the_distance_at_one_and_a_half_times_its_lowest():
    assert fired(monitor(alarm_patience=3), distances([1.0, 0.8, 0.9, 1.0, 1.19]))[-1] == []
    assert fired(monitor(alarm_patience=3, divergence_rise=0.4), distances([1.0, 0.8, 0.9, 1.0, 1.12]))[-1] == ["diverged"]


def test_diverged_by_the_distance_waits_for_the_warm_up():
    assert fired(monitor(alarm_patience=3), distances([1.0, 0.8, 0.9, 1.0, 1.21]), images_seen=WARM - 1)[-1] == []


# --- critic_unbounded: the W estimate rising at each of 2 x patience evaluations by critic_growth, no new low of
# the distance, which is less than critic_progress of the way to its floor


def critic(estimates, distances, floor=0.0, **thresholds):
    evaluations = [healthy(js_bound=None, w_estimate=w, sliced_pixels=d, sliced_pixels_floor=floor)
                   for w, d in zip(estimates, distances)]
    return fired(monitor("wgan", alarm_patience=3, **thresholds), evaluations)


STALLED = [1.0, 0.9] + [0.95] * 6  # the last 6 evaluations make no new low (0.9 came before them), a tenth of the way
RISING = [0.0, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3]  # rising at each of the last 6, from 1.0 to 1.3


def test_critic_unbounded_fires_when_the_estimate_rises_6_times_by_a_quarter_while_the_distance_makes_no_new_low():
    assert critic(RISING, STALLED)[-1] == ["critic_unbounded"] and critic(RISING, STALLED)[:-1] == [[]] * 7
    slower = [0.0, 1.0, 1.04, 1.08, 1.12, 1.16, 1.2, 1.2499]  # grown by less than a quarter
    assert critic(slower, STALLED)[-1] == []
    assert critic(slower, STALLED, critic_growth=0.2)[-1] == ["critic_unbounded"]


def test_critic_unbounded_needs_the_samples_less_than_half_of_the_way_to_the_floor():
    # from 1.0 towards the floor 0.2, half of the way is 0.6: a generator that got there is learning
    assert critic(RISING, [1.0, 0.6001] + [0.7] * 6, floor=0.2)[-1] == ["critic_unbounded"]
    assert critic(RISING, [1.0, 0.6] + [0.7] * 6, floor=0.2)[-1] == []
    assert critic(RISING, [1.0, 0.6] + [0.7] * 6, floor=0.2, critic_progress=0.51)[-1] == ["critic_unbounded"]


def test_critic_unbounded_needs_a_rise_at_every_one_of_the_6_evaluations():
    dip = [0.0, 1.0, 1.05, 1.1, 1.09, 1.2, 1.25, 1.3]
    assert critic(dip, STALLED)[-1] == []


def test_critic_unbounded_is_silent_while_the_distance_reaches_new_lows():
    learning = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.89]
    assert critic(RISING, learning)[-1] == []


def test_critic_unbounded_needs_a_positive_estimate_to_grow_from_and_a_wgan():
    assert critic([0.0, -1.0, -0.5, -0.2, 0.1, 0.5, 1.0, 2.0], STALLED)[-1] == []
    gan = [healthy(w_estimate=w, sliced_pixels=d) for w, d in zip(RISING, STALLED)]  # a GAN's signals
    assert "critic_unbounded" not in sum(fired(monitor(alarm_patience=3), gan), [])


def test_critic_unbounded_waits_for_the_warm_up():
    evaluations = [healthy(js_bound=None, w_estimate=w, sliced_pixels=d) for w, d in zip(RISING, STALLED)]
    assert fired(monitor("wgan", alarm_patience=3), evaluations, images_seen=WARM - 1)[-1] == []


# --- not_learning: after learning_budget_images, the sliced distance under learning_progress of the way to its floor


def learning(lowest, images_seen, floor=0.2, **thresholds):
    """Whether not_learning fires at a second evaluation, at ``images_seen``, whose distance is ``lowest``."""
    first, second = healthy(sliced_pixels=1.0, sliced_pixels_floor=floor), healthy(sliced_pixels=lowest, sliced_pixels_floor=floor)
    if floor is None:
        first, second = ({k: v for k, v in line.items() if k != "sliced_pixels_floor"} for line in (first, second))
    watched = monitor(**thresholds)
    assert watched.observe(first, 0)["alarms"] == []
    return [alarm["name"] for alarm in watched.observe(second, images_seen)["alarms"]] == ["not_learning"]


def test_not_learning_fires_after_the_budget_under_0_15_of_the_way_to_the_floor():
    # from 1.0 towards the floor 0.2: 0.15 of the way is 0.88
    assert learning(0.8801, 30_000) and not learning(0.88, 30_000)
    assert not learning(0.8801, 29_999)
    assert learning(0.88, 30_000, learning_progress=0.151)
    assert not learning(0.8801, 30_000, learning_budget_images=40_000)


def test_not_learning_measures_from_zero_without_a_floor():
    assert learning(0.8501, 30_000, floor=None) and not learning(0.85, 30_000, floor=None)


def test_not_learning_reads_the_lowest_distance_so_far_and_fires_once():
    watched = monitor()
    assert watched.observe(healthy(sliced_pixels=1.0), 0)["alarms"] == []
    learnt_once = [healthy(sliced_pixels=value) for value in (0.5, 0.95, 0.95)]
    assert fired(watched, learnt_once, images_seen=10**6) == [[], [], []]
    watched = monitor()
    assert watched.observe(healthy(sliced_pixels=1.0), 0)["alarms"] == []
    stuck = [healthy(sliced_pixels=value) for value in (0.95, 0.95, 0.95)]
    assert fired(watched, stuck, images_seen=10**6) == [["not_learning"], [], []]


def test_not_learning_needs_an_earlier_evaluation_to_measure_progress_from():
    assert fired(monitor(), [healthy(sliced_pixels=1.0)], images_seen=10**6) == [[]]
