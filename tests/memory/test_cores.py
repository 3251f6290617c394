"""The contract every memory core keeps (memrl.memory.base), checked on tiny configurations."""

from __future__ import annotations

import pytest
import torch

from memrl.memory import CORES, core_options, detach_state, index_state, make_core, set_strategy
from memrl.memory.eviction import STRATEGIES

INPUT_DIM = 5  # as in conftest.py's tiny cores
NUM_PLACES = 4
ALL = sorted(CORES)
SAT = ["sat-fifo", "sat-pm"]


def _window(t_len: int, batch: int, seed: int, reset_rate: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(t_len, batch, INPUT_DIM, generator=g)
    resets = torch.rand(t_len, batch, generator=g) < reset_rate
    places = torch.randint(0, NUM_PLACES, (t_len, batch), generator=g)
    return x, resets, places


def _step_through(core, x, state, resets, places):
    outputs = []
    for t in range(x.shape[0]):
        y, state = core(x[t], state, resets[t], places[t])
        outputs.append(y)
    return torch.stack(outputs), state


def test_the_factory_knows_every_core():
    assert set(CORES) == {"none", "lstm", "gru", "transformer", "hcam", "sat-fifo", "sat-pm"}


@pytest.mark.parametrize("name", ALL)
def test_initial_state_is_batch_first_and_output_has_the_declared_width(name, tiny_core):
    core = tiny_core(name)
    state = core.initial_state(3)
    for key, value in state.items():
        assert value.shape[0] == 3, key
    reset, places = torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.int64)
    y, next_state = core(torch.randn(3, INPUT_DIM), state, reset, places)
    assert y.shape == (3, core.output_dim)
    assert {k: v.shape for k, v in next_state.items()} == {k: v.shape for k, v in state.items()}


def test_initial_state_shapes_of_the_attention_cores(tiny_core):
    hcam = tiny_core("hcam").initial_state(2)
    assert hcam["contents"].shape == (2, 2, 3, 3, 8)  # [B, L, M, C, W]
    assert hcam["keys"].shape == (2, 2, 3, 8)
    assert hcam["accumulator"].shape == (2, 2, 3, 8)
    assert (hcam["chunk_time"] == -1).all()
    pm = tiny_core("sat-pm").initial_state(2)
    assert pm["contents"].shape == (2, 2, 6, 8)  # [B, L, N, W]
    assert pm["entry_place"].shape == pm["entry_time"].shape == (2, 6)  # [B, N]
    xl = tiny_core("transformer").initial_state(2)
    assert xl["keys"].shape == (2, 2, 5, 8)  # [B, L, window, W]
    lstm = tiny_core("lstm").initial_state(2)
    assert lstm["h"].shape == lstm["c"].shape == (2, 1, 8)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("warm_steps", [0, 7])
def test_forward_sequence_equals_stepping_over_windows_with_resets(name, warm_steps, tiny_core):
    core = tiny_core(name)
    batch = 4
    state = core.initial_state(batch)
    if warm_steps:  # start the window mid-episode, mid-chunk, with a full memory
        x0, r0, p0 = _window(warm_steps, batch, seed=1, reset_rate=0.0)
        _, state = _step_through(core, x0, state, r0, p0)
    x, resets, places = _window(29, batch, seed=2)
    resets[0, 0] = True  # one entry starts an episode at the window's first step
    resets[5:9, 2] = True  # and one resets several steps in a row
    stepped, stepped_state = _step_through(core, x, state, resets, places)
    sequence, sequence_state = core.forward_sequence(x, state, resets, places)
    torch.testing.assert_close(sequence, stepped, atol=1e-5, rtol=0)
    # The final states are equivalent: the next window gives the same outputs from either.
    x2, resets2, places2 = _window(11, batch, seed=3)
    after_step, _ = _step_through(core, x2, stepped_state, resets2, places2)
    after_sequence, _ = core.forward_sequence(x2, sequence_state, resets2, places2)
    torch.testing.assert_close(after_sequence, after_step, atol=1e-5, rtol=0)


def _comparable(core, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What a state holds, with unused slots blanked: equal states give equal dicts.

    Chunks still waiting in HCAM's ``pending`` buffer are written into ``contents`` first;
    ``pending`` and ``pending_slot`` themselves say where chunks wait, not what memory holds.
    """
    kept = {k: v for k, v in state.items() if k not in ("pending", "pending_slot")}
    if "pending_slot" in state:
        kept["contents"] = core._flush(state)
    if "chunk_time" in state:
        free = state["chunk_time"] < 0  # [B, M]
        if "chunk_place" in kept:  # place-aware chunks
            kept["chunk_place"] = kept["chunk_place"].masked_fill(free, -1)
            kept["chunk_places"] = kept["chunk_places"].masked_fill(free[..., None], -1)
        kept["keys"] = kept["keys"].masked_fill(free[:, None, :, None], 0)
        kept["contents"] = kept["contents"].masked_fill(free[:, None, :, None, None], 0)
        positions = torch.arange(state["accumulator"].shape[2])
        empty = positions >= state["accumulated"][:, None]  # [B, C] not yet written
        kept["accumulator"] = kept["accumulator"].masked_fill(empty[:, None, :, None], 0)
        if "accumulator_places" in kept:
            kept["accumulator_places"] = kept["accumulator_places"].masked_fill(empty, -1)
    if "entry_time" in state:
        free = state["entry_time"] < 0  # [B, N]
        kept["entry_place"] = kept["entry_place"].masked_fill(free, -1)
        kept["contents"] = kept["contents"].masked_fill(free[:, None, :, None], 0)
        kept["time_encoding"] = kept["time_encoding"].masked_fill(free[..., None], 0)
    return kept


def _assert_same_state(core, got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]):
    got, expected = _comparable(core, got), _comparable(core, expected)
    assert got.keys() == expected.keys()
    for key, value in got.items():
        torch.testing.assert_close(value, expected[key], atol=1e-5, rtol=0, msg=key)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("warm_steps", [0, 7])
def test_forward_sequence_leaves_the_state_that_stepping_leaves(name, warm_steps, tiny_core):
    """Memory, counts, write times, places and visits after a window equal those after
    stepping, for windows ending at every position in a chunk, with and without a reset near
    the end."""
    core = tiny_core(name)
    batch = 7
    state = core.initial_state(batch)
    if warm_steps:
        x0, r0, p0 = _window(warm_steps, batch, seed=15, reset_rate=0.0)
        _, state = _step_through(core, x0, state, r0, p0)
    x, resets, places = _window(23, batch, seed=16, reset_rate=0.0)
    for b in range(batch - 1):
        resets[22 - b, b] = True  # episodes of 1 .. 6 steps at the end; the last entry runs on
    with torch.no_grad():
        _, stepped = _step_through(core, x, state, resets, places)
        _, sequence = core.forward_sequence(x, state, resets, places)
    _assert_same_state(core, sequence, stepped)


@pytest.mark.parametrize("name", SAT)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_forward_sequence_equals_stepping_for_every_strategy(name, strategy, tiny_core):
    core = tiny_core(name)
    state = set_strategy(core.initial_state(3), strategy)
    x, resets, places = _window(25, 3, seed=4)
    stepped, _ = _step_through(core, x, state, resets, places)
    sequence, _ = core.forward_sequence(x, state, resets, places)
    torch.testing.assert_close(sequence, stepped, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_a_reset_empties_memory(name, tiny_core):
    """After a reset, outputs equal those of a fresh state, whatever came before."""
    core = tiny_core(name)
    batch = 3
    x_before, _, p_before = _window(17, batch, seed=5, reset_rate=0.0)
    fresh_state, no_resets = core.initial_state(batch), torch.zeros(17, batch)
    _, used = _step_through(core, x_before * 5, fresh_state, no_resets, p_before)
    x, _, places = _window(13, batch, seed=6, reset_rate=0.0)
    resets = torch.zeros(13, batch, dtype=torch.bool)
    resets[0] = True
    after_reset, _ = _step_through(core, x, used, resets, places)
    fresh, _ = _step_through(core, x, core.initial_state(batch), resets, places)
    torch.testing.assert_close(after_reset, fresh, atol=1e-6, rtol=0)
    # and the memory mattered: without the reset the outputs differ (except for `none`)
    no_reset, _ = _step_through(core, x, used, torch.zeros(13, batch, dtype=torch.bool), places)
    assert (name == "none") == torch.allclose(no_reset, fresh, atol=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_a_reset_of_one_batch_entry_leaves_the_others_alone(name, tiny_core):
    core = tiny_core(name)
    x, _, places = _window(12, 2, seed=7, reset_rate=0.0)
    resets = torch.zeros(12, 2, dtype=torch.bool)
    together, _ = _step_through(core, x, core.initial_state(2), resets, places)
    resets[6, 0] = True
    one_reset, _ = _step_through(core, x, core.initial_state(2), resets, places)
    torch.testing.assert_close(one_reset[:, 1], together[:, 1], atol=1e-6, rtol=0)
    torch.testing.assert_close(one_reset[:6], together[:6], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_deterministic_under_manual_seed(name, tiny_core):
    x, resets, places = _window(9, 2, seed=8)
    a, _ = tiny_core(name, seed=3).forward_sequence(
        x, tiny_core(name).initial_state(2), resets, places
    )
    b, _ = tiny_core(name, seed=3).forward_sequence(
        x, tiny_core(name).initial_state(2), resets, places
    )
    assert torch.equal(a, b)
    c, _ = tiny_core(name, seed=4).forward_sequence(
        x, tiny_core(name).initial_state(2), resets, places
    )
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", ALL)
def test_gradients_reach_the_inputs_and_parameters_through_a_window(name, tiny_core):
    core = tiny_core(name)
    x, resets, places = _window(10, 2, seed=9)
    x.requires_grad_(True)
    y, state = core.forward_sequence(x, core.initial_state(2), resets, places)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in core.parameters() if p.requires_grad)
    stored = detach_state(state)
    assert all(not v.requires_grad for v in stored.values())


@pytest.mark.parametrize("name", ALL)
def test_states_of_batch_entries_can_be_split_and_joined(name, tiny_core):
    from memrl.memory import concat_states

    core = tiny_core(name)
    x, resets, places = _window(8, 4, seed=10)
    y, state = core.forward_sequence(x, core.initial_state(4), resets, places)
    halves = [index_state(state, slice(0, 2)), index_state(state, slice(2, 4))]
    joined = concat_states(halves)
    x2, r2, p2 = _window(5, 4, seed=11)
    a, _ = core.forward_sequence(x2, state, r2, p2)
    b, _ = core.forward_sequence(x2, joined, r2, p2)
    torch.testing.assert_close(a, b)
    c, _ = core.forward_sequence(x2[:, 2:], halves[1], r2[:, 2:], p2[:, 2:])
    torch.testing.assert_close(a[:, 2:], c, atol=1e-6, rtol=0)


# Each bad option and what the error must say: the option as typed and what is allowed.
BAD_OPTIONS = [
    ("none", {"width": 0}, "width must be an integer >= 1 or None, got 0"),
    ("lstm", {"width": 0}, "width must be an integer >= 1, got 0"),
    ("gru", {"num_layers": 0}, "num_layers must be an integer >= 1, got 0"),
    ("transformer", {"heads": 3}, "heads must divide width=128, got heads=3"),
    ("transformer", {"heads": 0}, "heads must be an integer >= 1, got 0"),
    ("transformer", {"window": 0}, "window must be an integer >= 1, got 0"),
    ("transformer", {"num_layers": 0}, "num_layers must be an integer >= 1, got 0"),
    ("transformer", {"width": 0}, "width must be an integer >= 1, got 0"),
    ("transformer", {"ff_multiplier": 0}, "ff_multiplier must be an integer >= 1, got 0"),
    ("hcam", {"chunk_size": 0}, "chunk_size must be an integer >= 1, got 0"),
    ("hcam", {"top_k": 65, "capacity": 64}, "top_k must be 1..capacity=64, got 65"),
    ("hcam", {"width": 10, "heads": 4}, "heads must be >= 1 and divide width=10, got 4"),
    ("hcam", {"num_layers": 0}, "num_layers must be an integer >= 1, got 0"),
    ("hcam", {"width": 0}, "width must be an integer >= 1, got 0"),
    ("hcam", {"heads": 0}, "heads must be an integer >= 1, got 0"),
    ("hcam", {"top_k": 0}, "top_k must be an integer >= 1, got 0"),
    ("hcam", {"capacity": 0}, "capacity must be an integer >= 1, got 0"),
    ("hcam", {"ff_multiplier": 0}, "ff_multiplier must be an integer >= 1, got 0"),
    ("hcam", {"top_k": True}, "top_k must be an integer >= 1, got True"),
    ("hcam", {"chunk_size": 2.5}, "chunk_size must be an integer >= 1, got 2.5"),
    ("hcam", {"num_places": 4}, r"core 'hcam' takes options \[.*\], got unknown \['num_places'\]"),
    ("sat-fifo", {"num_places": 0}, "num_places must be an integer >= 1, got 0"),
    ("sat-pm", {"top_k": 5, "num_places": 4}, "top_k must be 1..num_places=4, got 5"),
    ("sat-pm", {"capacity": 0}, "capacity must be an integer >= 1, got 0"),
    ("sat-pm", {"heads": 0}, "heads must be an integer >= 1, got 0"),
    ("sat-pm", {"top_k": 0}, "top_k must be an integer >= 1, got 0"),
    ("sat-pm", {"num_places": 0}, "num_places must be an integer >= 1, got 0"),
    ("sat-pm", {"chunk_size": 4}, r"got unknown \['chunk_size'\]"),
    ("lstm", {"window": 4}, r"got unknown \['window'\]"),
]


@pytest.mark.parametrize(("name", "options", "message"), BAD_OPTIONS)
def test_bad_options_raise_value_error_naming_the_option(name, options, message):
    with pytest.raises(ValueError, match=message):
        make_core(name, INPUT_DIM, **options)


def test_bad_names_and_dims_raise_value_error_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="hcam"):
        make_core("htm", INPUT_DIM)
    with pytest.raises(ValueError, match="chunk_size"):
        make_core("hcam", INPUT_DIM, chunk=4)
    with pytest.raises(ValueError):
        make_core("lstm", 0)
    assert core_options("hcam")["top_k"] == 4


@pytest.mark.parametrize("name", SAT)
def test_place_aware_cores_check_their_places(name, tiny_core):
    core = tiny_core(name)
    state = core.initial_state(2)
    x, reset = torch.randn(2, INPUT_DIM), torch.ones(2, dtype=torch.bool)
    with pytest.raises(ValueError, match="places"):
        core(x, state, reset, None)
    with pytest.raises(ValueError, match="0..3"):
        core(x, state, reset, torch.tensor([0, NUM_PLACES]))


def test_set_strategy_per_batch_entry(tiny_core):
    state = tiny_core("sat-pm").initial_state(3)
    assert state["strategy"].tolist() == [0, 0, 0]
    state = set_strategy(state, torch.tensor([1, 2, 3]))
    state = set_strategy(state, "lvfo", where=torch.tensor([True, False, False]))
    assert state["strategy"].tolist() == [3, 2, 3]
    state = set_strategy(state, "fifo", where=torch.tensor([0, 1, 0]))  # 0/1 flags work too
    assert state["strategy"].tolist() == [3, 0, 3]
    with pytest.raises(ValueError, match="fifo"):
        set_strategy(state, "random")
    with pytest.raises(ValueError):
        set_strategy(tiny_core("hcam").initial_state(3), "fifo")


def test_a_sat_pm_core_with_a_fixed_strategy_starts_every_episode_with_it():
    options = {"width": 16, "num_layers": 1, "heads": 2, "capacity": 8, "num_places": 4}
    core = make_core("sat-pm", 5, **options, strategy="mvfo")
    assert core.initial_state(2)["strategy"].tolist() == [STRATEGIES.index("mvfo")] * 2
    with pytest.raises(ValueError, match="strategy must be one of"):
        make_core("sat-pm", 5, **options, strategy="random")


@pytest.mark.parametrize("name", ALL)
def test_forward_sequence_has_the_gradients_of_stepping(name, tiny_core):
    core = tiny_core(name)
    x0, r0, p0 = _window(7, 3, seed=12, reset_rate=0.0)
    _, state = _step_through(core, x0, core.initial_state(3), r0, p0)
    state = detach_state(state)
    x, resets, places = _window(19, 3, seed=13)
    weights = torch.randn(19, 3, core.output_dim, generator=torch.Generator().manual_seed(14))
    grads = []
    for form in ("step", "sequence"):
        core.zero_grad()
        xg = x.clone().requires_grad_(True)
        if form == "step":
            y, _ = _step_through(core, xg, state, resets, places)
        else:
            y, _ = core.forward_sequence(xg, state, resets, places)
        (y * weights).sum().backward()
        grads.append([xg.grad] + [p.grad for p in core.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1])
    for stepped, sequence in zip(*grads, strict=True):
        torch.testing.assert_close(sequence, stepped, atol=1e-4, rtol=1e-4)


SMALLEST = {
    "none": {"width": 1},
    "lstm": {"width": 1, "num_layers": 1},
    "gru": {"width": 1, "num_layers": 1},
    "transformer": {"width": 1, "num_layers": 1, "heads": 1, "window": 1, "ff_multiplier": 1},
    "hcam": {
        "width": 1,
        "num_layers": 1,
        "heads": 1,
        "chunk_size": 1,
        "top_k": 1,
        "capacity": 1,
        "ff_multiplier": 1,
    },
    "sat-fifo": {"width": 1, "heads": 1, "chunk_size": 1, "top_k": 1, "capacity": 1},
    "sat-pm": {"width": 1, "heads": 1, "top_k": 1, "capacity": 1, "num_places": 1},
}


@pytest.mark.parametrize("name", ALL)
def test_the_smallest_sizes_are_accepted(name):
    core = make_core(name, 1, **SMALLEST[name])
    state = core.initial_state(2)
    for t in range(3):
        y, state = core(torch.ones(2, 1), state, torch.full((2,), t == 0), torch.zeros(2).long())
    assert y.shape == (2, 1)


@pytest.mark.parametrize("name", ALL)
def test_an_initial_state_is_a_fresh_episode(name, tiny_core):
    """Stepping from ``initial_state`` without a reset equals starting with one."""
    core = tiny_core(name)
    x, _, places = _window(9, NUM_PLACES, seed=17)
    places[0] = torch.arange(NUM_PLACES)  # the first step in every place
    no_reset = torch.zeros(9, NUM_PLACES, dtype=torch.bool)
    with_reset = no_reset.clone()
    with_reset[0] = True
    y_plain, plain = _step_through(core, x, core.initial_state(NUM_PLACES), no_reset, places)
    y_reset, reset = _step_through(core, x, core.initial_state(NUM_PLACES), with_reset, places)
    torch.testing.assert_close(y_plain, y_reset, atol=0, rtol=0)
    _assert_same_state(core, plain, reset)


# Counters, times, places and strategy ids are int64 (exact at any episode length); the rest is
# float32 features.
INTEGER_STATE = {
    "none": set(),
    "lstm": set(),
    "gru": set(),
    "transformer": {"steps"},
    "hcam": {"accumulated", "written", "chunk_time", "pending_slot"},
    "sat-fifo": {"accumulated", "written", "chunk_time", "pending_slot", "accumulator_places"}
    | {"chunk_places", "chunk_place", "strategy"},
    "sat-pm": {"entry_time", "entry_place", "steps", "strategy"},
}


@pytest.mark.parametrize("name", ALL)
def test_state_counters_are_int64_and_features_float32(name, tiny_core):
    core = tiny_core(name)
    x, resets, places = _window(4, 2, seed=18)
    for state in (
        core.initial_state(2),
        core.forward_sequence(x, core.initial_state(2), resets, places)[1],
    ):
        dtypes = {key: value.dtype for key, value in state.items()}
        assert {k for k, d in dtypes.items() if d == torch.int64} == INTEGER_STATE[name]
        assert all(d in (torch.int64, torch.float32) for d in dtypes.values())


@pytest.mark.parametrize("name", ALL)
def test_a_checkpoint_holds_the_learned_parameters_only(name, tiny_core):
    """Fixed encodings (positions, ages, sinusoidal places) are rebuilt, not saved."""
    core = tiny_core(name)
    assert set(core.state_dict()) == {key for key, _ in core.named_parameters()}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("t_len", [1, 2])
def test_windows_shorter_than_a_chunk_equal_stepping(name, t_len, tiny_core):
    core = tiny_core(name)
    x0, r0, p0 = _window(4, 3, seed=19, reset_rate=0.0)
    _, state = _step_through(core, x0, core.initial_state(3), r0, p0)  # one chunk committed
    x, resets, places = _window(t_len, 3, seed=20, reset_rate=0.0)
    resets[0, 1] = True
    stepped, _ = _step_through(core, x, state, resets, places)
    sequence, _ = core.forward_sequence(x, state, resets, places)
    torch.testing.assert_close(sequence, stepped, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", SAT)
def test_a_window_follows_the_strategy_in_force_at_each_step(name, tiny_core):
    """``strategies`` ``[T, B]`` (what the allocator chose per episode) overrides the state's."""
    core = tiny_core(name)
    x, resets, places = _window(24, 4, seed=21, reset_rate=0.0)
    resets[0] = True
    resets[12, :2] = True
    strategies = torch.tensor([1, 2, 3, 1]).repeat(24, 1)  # one per batch entry, none FIFO ...
    strategies[12:, :2] = torch.tensor([3, 2])  # ... and new ones for the episodes from step 12
    state = core.initial_state(4)  # FIFO everywhere
    stepped = []
    for t in range(24):
        state = set_strategy(state, strategies[t])
        y, state = core(x[t], state, resets[t], places[t])
        stepped.append(y)
    sequence, final = core.forward_sequence(
        x, core.initial_state(4), resets, places, strategies=strategies
    )
    torch.testing.assert_close(sequence, torch.stack(stepped), atol=1e-5, rtol=0)
    assert final["strategy"].tolist() == [3, 2, 3, 1]
    fifo, _ = core.forward_sequence(x, core.initial_state(4), resets, places)
    assert not torch.allclose(fifo, sequence, atol=1e-4)  # the strategies changed what was kept


DEFAULTS = {
    "none": {"width": 128},
    "lstm": {"width": 128, "num_layers": 1},
    "gru": {"width": 128, "num_layers": 1},
    "transformer": {
        "width": 128,
        "num_layers": 2,
        "heads": 4,
        "window": 64,
        "ff_multiplier": 4,
        "detach_window": False,
    },
    "hcam": {
        "width": 128,
        "num_layers": 4,
        "heads": 4,
        "chunk_size": 32,
        "top_k": 4,
        "capacity": 64,
        "ff_multiplier": 4,
        "detach_window": False,
    },
}
DEFAULTS["sat-fifo"] = DEFAULTS["hcam"] | {
    "num_places": 32,
    "learned_places": False,
    "place_init": "sinusoid",
}
DEFAULTS["sat-pm"] = {
    "width": 128,
    "num_layers": 4,
    "heads": 4,
    "top_k": 4,
    "capacity": 256,
    "ff_multiplier": 4,
    "num_places": 32,
    "learned_places": False,
    "place_init": "sinusoid",
    "strategy": "fifo",
    "detach_window": False,
}


@pytest.mark.parametrize("name", ALL)
def test_default_options_are_the_documented_ones(name):
    """The defaults are part of the interface (``--help``, saved run configs): HCAM's are the
    paper agent's 4 layers and the reference port's chunk size 32 and top-k 4."""
    assert core_options(name) == DEFAULTS[name]


def test_concatenating_one_state_gives_it_back(tiny_core):
    from memrl.memory import concat_states

    state = tiny_core("hcam").initial_state(2)
    joined = concat_states([state])
    assert joined.keys() == state.keys()
    assert all(torch.equal(joined[key], value) for key, value in state.items())


def test_strategies_given_as_ids_and_bad_ids_are_named(tiny_core):
    state = tiny_core("sat-pm").initial_state(3)
    assert set_strategy(state, 2)["strategy"].tolist() == [2, 2, 2]
    assert set_strategy(state, torch.tensor(1))["strategy"].tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match=r"strategy ids must be in 0..3, got \[0, 4, 1\]"):
        set_strategy(state, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"strategy ids must be in 0..3, got \[-1, 0, 0\]"):
        set_strategy(state, torch.tensor([-1, 0, 0]))
    with pytest.raises(ValueError, match=r"strategy must have shape \(3,\), got \(2,\)"):
        set_strategy(state, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"needs the state of a SAT core \(sat-fifo, sat-pm\)"):
        set_strategy(tiny_core("hcam").initial_state(3), "fifo")


@pytest.mark.parametrize("name", ["transformer", "hcam", "sat-fifo", "sat-pm"])
def test_size_options_reach_the_layers(name):
    options = {"width": 12, "num_layers": 3, "heads": 3, "ff_multiplier": 2}
    if name in ("hcam", "sat-fifo"):
        options |= {"chunk_size": 5, "top_k": 2, "capacity": 7}
    if name == "sat-pm":
        options |= {"top_k": 2, "capacity": 7, "num_places": 3}
    if name == "sat-fifo":
        options |= {"num_places": 3}
    core = make_core(name, INPUT_DIM, **options)
    assert len(core.layers) == 3
    for layer in core.layers:
        assert layer.ff.net[0].out_features == 24  # ff_multiplier x width
        if name != "transformer":
            assert (layer.memory.top_k, layer.memory.within.heads) == (2, 3)
    if name in ("hcam", "sat-fifo"):
        assert core.initial_state(1)["contents"].shape == (1, 3, 7, 5, 12)  # [B, L, M, C, W]
    if name in ("sat-fifo", "sat-pm"):
        assert core.place_embedding.table.shape == (3, 12)


@pytest.mark.parametrize("name", ALL)
def test_resets_and_places_may_come_as_any_numbers(name, tiny_core):
    """0/1 resets of any dtype (e.g. float ``dones`` from a buffer) and int32 place ids (e.g.
    from numpy) give what bool resets and int64 places give, stepping and over a window."""
    core = tiny_core(name)
    x, resets, places = _window(12, 3, seed=22)
    resets[0] = True
    state = core.initial_state(3)
    expected, _ = core.forward_sequence(x, state, resets, places)
    loose_resets, loose_places = resets.float(), places.to(torch.int32)
    window, window_state = core.forward_sequence(x, state, loose_resets, loose_places)
    stepped, stepped_state = _step_through(core, x, state, loose_resets, loose_places)
    torch.testing.assert_close(window, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(stepped, expected, atol=1e-5, rtol=0)
    for final in (window_state, stepped_state):  # and the state keeps its int64 counters
        assert {k for k, v in final.items() if v.dtype == torch.int64} == INTEGER_STATE[name]
