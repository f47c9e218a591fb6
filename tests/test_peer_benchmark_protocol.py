"""The rules ``benchmarks/gpt.py`` holds both sides to (``benchmarks/gpt_protocol.py``): one scorer, one
clock, one time-budget rule; and that both sides' runs are planned by that rule."""


import numpy as np
import pytest


from benchmarks import gpt_protocol  # noqa: E402

VOCAB = 65


def bigram_table(seed=0):
    return np.random.default_rng(seed).normal(0, 2, (VOCAB, VOCAB))


def test_the_scorer_covers_the_whole_split_and_matches_the_bigram_closed_form():
    """A bigram model's loss does not depend on how the text is cut into windows, so the scorer must
    give exactly the mean over every consecutive pair of the split: no window, and no tail, dropped."""
    tokens = np.random.default_rng(1).integers(0, VOCAB, 64 * 37 + 23)  # 36 whole windows and a tail
    table = bigram_table()
    log_probs = table - np.log(np.exp(table).sum(axis=1, keepdims=True))
    expected = -log_probs[tokens[:-1], tokens[1:]].mean()
    result = gpt_protocol.score(lambda x: table[x], tokens, context=64, batch_size=5)
    assert result["tokens_scored"] == len(tokens) - 1
    assert result["loss"] == pytest.approx(expected, abs=1e-4)


def test_one_scorer_gives_the_same_number_for_the_same_logits_whichever_side_produced_them():
    """nanoGPT's side hands the scorer torch's float32 logits for int64 inputs, the zoo's side
    TensorFlow's float32 logits for the same windows; the same logits give the same score."""
    import tensorflow as tf

    tokens = np.random.default_rng(2).integers(0, VOCAB, 1000)
    table = bigram_table(3).astype(np.float32)
    numpy_side = gpt_protocol.score(lambda x: table[x], tokens, context=64)
    embedding = tf.constant(table)
    tensorflow_side = gpt_protocol.score(
        lambda x: tf.gather(embedding, tf.constant(x, tf.int32)).numpy(), tokens, context=64)
    assert numpy_side == tensorflow_side
    shifted = gpt_protocol.score(lambda x: table[x] + 7.0, tokens, context=64)  # softmax is shift-invariant
    assert shifted["loss"] == pytest.approx(numpy_side["loss"], abs=1e-4)
    worse = gpt_protocol.score(lambda x: np.zeros((*x.shape, VOCAB)), tokens, context=64)
    assert worse["loss"] == pytest.approx(np.log(VOCAB), abs=1e-4)


@pytest.mark.parametrize("evaluations,overhead", [(1, 0.0), (8, 0.0), (8, 4.0)])
def test_the_budget_rule_never_leaves_more_than_10_percent_unused_nor_overruns(evaluations, overhead):
    refused = 0
    for budget in np.linspace(5, 400, 83):
        for step in np.geomspace(0.001, 2.0, 61):
            try:
                iterations = gpt_protocol.plan_iterations(budget, step, evaluations, overhead)
            except ValueError:
                refused += 1
                # only budgets of too few steps are refused
                assert (budget - overhead) / step < 10 * evaluations or overhead > 0.1 * budget
                continue
            planned = overhead + iterations * step
            assert iterations % evaluations == 0 and iterations >= evaluations
            assert planned <= budget + 1e-9
            assert budget - planned <= 0.10 * budget + 1e-9
    assert refused > 0  # the grid reaches budgets too short to plan


def test_the_planned_iterations_are_the_whole_schedule_of_both_sides(tmp_path):
    """The budget rule's count becomes nanoGPT's max_iters and lr_decay_iters (its cosine ends on the
    last iteration) and the zoo's --steps (its schedule spans them: tests/test_training.py)."""
    import argparse
    import json

    from benchmarks import gpt as benchmark

    iterations = gpt_protocol.plan_iterations(100, 0.05, benchmark.EVALUATIONS)
    args = argparse.Namespace(offline_fallback=False, torch_python="python", nanogpt_dir="nanoGPT",
                              work_dir=str(tmp_path))
    flags = benchmark.nanogpt_command(args, iterations, 0, "out.json", str(tmp_path))
    assert f"--max_iters={iterations}" in flags and f"--lr_decay_iters={iterations}" in flags
    assert f"--eval_interval={iterations // benchmark.EVALUATIONS}" in flags
    zoo = json.loads(benchmark.zoo_command(args, "zoo, zoo's recipe", iterations, 0, "out.json")[-1])
    assert zoo["iterations"] == iterations


def test_the_clock_counts_training_only():
    now = [0.0]
    clock = gpt_protocol.TrainingClock(now=lambda: now[0])
    now[0] = 3.0  # start-up: not counted
    clock.start()
    for _ in range(10):
        now[0] += 0.5
        clock.step()
    with clock.excluded():  # an evaluation and a checkpoint
        now[0] += 20.0
        assert clock.seconds() == pytest.approx(5.0)
    for _ in range(10):
        now[0] += 0.5
        clock.step()
    clock.pause()  # hooks pause and resume without a with-block (nanoGPT's model.eval() / .train())
    now[0] += 7.0
    clock.resume()
    assert clock.seconds() == pytest.approx(10.0)
    assert clock.median_step_seconds() == pytest.approx(0.5)
    assert clock.calibration() == {"step_seconds": pytest.approx(0.5), "overhead_seconds": pytest.approx(0.0)}


def test_calibration_takes_the_mean_step_and_the_start_up_apart():
    """Planning spends the budget by the sum of the steps: one slow step in ten moves the mean, not
    the median; the first steps' extra time (tracing) is a one-off overhead."""
    now = [0.0]
    clock = gpt_protocol.TrainingClock(now=lambda: now[0])
    clock.start()
    now[0] += 6.0  # the first step traces the graph
    clock.step()
    for i in range(1, 105):
        now[0] += 1.4 if i % 10 == 0 else 0.1
        clock.step()
    calibration = clock.calibration(skip=5)
    assert clock.median_step_seconds() == pytest.approx(0.1)
    assert calibration["step_seconds"] == pytest.approx((0.1 * 90 + 1.4 * 10) / 100, abs=1e-4)
    assert calibration["overhead_seconds"] == pytest.approx(6.0 + 0.4 - 5 * calibration["step_seconds"], abs=1e-3)
