"""One-layer attention cores against references rebuilt from DESIGN.md's description.

Each reference recomputes a step's output from scratch from the layer's own weights and the whole
episode's inputs: which steps are in memory (chunks of ``C`` committed every ``C`` steps, the last
``capacity`` kept; or, for SAT-PM, the last ``capacity`` steps), how they are grouped (chunks, or
places), what is added to them (the position in the chunk or the time, and the place embedding),
and the hierarchical read (keys = group means, the ``top_k`` best, a softmax over those only,
attention inside each). With one layer a step's layer input depends on that step alone, so the
reference needs no recurrence. The cores must agree stepping and over a window.
"""

from __future__ import annotations

import math

import pytest
import torch

from memrl.memory import make_core

WIDTH, CHUNK, CAPACITY, TOP_K, PLACES = 8, 2, 3, 2, 4
STEPS, RESET_AT = 20, 13  # two episodes: 13 steps (6 chunks + 1, 3 evicted) and 7


def _sinusoids(positions: torch.Tensor, width: int) -> torch.Tensor:
    """Transformer sinusoids written out: sines of the first half of features, then cosines."""
    i = torch.arange(width // 2, dtype=torch.float64)
    angles = positions[:, None].double() / 10000.0 ** (2 * i / width)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def _hierarchical_read(memory, query, groups, encodings):
    """Lampinen et al.'s read of ``groups`` ``[n_i, W]``: keys are the group means; the top-k
    groups by ``(W_q q) . (W_k key) / sqrt(W)``; softmax over those; attention inside each group
    after adding its ``encodings``; results weighted and summed."""
    if not groups:
        return torch.zeros(WIDTH)
    keys = torch.stack([g.mean(dim=0) for g in groups])  # [n, W]
    logits = (memory.key.weight @ keys.T).T @ (memory.query.weight @ query) / math.sqrt(WIDTH)
    top_logits, top = logits.topk(min(TOP_K, len(groups)))
    weights = torch.softmax(top_logits, dim=0)  # over the kept groups only
    one = torch.ones(1, 1)
    out = torch.zeros(WIDTH)
    for weight, index in zip(weights, top.tolist(), strict=True):
        entries = (groups[index] + encodings[index])[None, None]  # [1, 1, n_i, W]
        out = out + weight * memory.within(query[None], entries, one)[0]
    return out


def _finish(core, layer, h, memory_output):
    h = h + memory_output
    return core.norm_out(h + layer.ff(layer.norm_ff(h)))


def _chunked_reference(core, x, places, starts, place_aware):
    """HCAM / SAT-FIFO, one layer: local attention over the partial chunk + read of the chunks."""
    layer = core.layers[0]
    h0 = core.input(x)  # [T, W]
    u = layer.norm_memory(h0)
    placed = u + core.place_embedding(places) if place_aware else u  # what memory holds
    positions = _sinusoids(torch.arange(CHUNK), WIDTH)  # position within a chunk
    outputs = []
    for t in range(len(x)):
        start = max(s for s in starts if s <= t)
        number, position = divmod(t - start, CHUNK)
        first = start + number * CHUNK  # the partial chunk: steps first .. t
        local_entries = (placed[first : t + 1] + positions[: position + 1])[None, None]
        local = layer.local(u[t][None], local_entries, torch.ones(1, 1))[0]
        kept = range(max(0, number - CAPACITY), number)  # committed chunks, FIFO
        chunks = [placed[start + i * CHUNK : start + (i + 1) * CHUNK] for i in kept]
        read = _hierarchical_read(layer.memory, u[t], chunks, [positions] * len(chunks))
        outputs.append(_finish(core, layer, h0[t], local + read))
    return torch.stack(outputs)


def _place_centric_reference(core, x, places, starts):
    """SAT-PM, one layer, FIFO: the last ``capacity`` steps, grouped and read by place."""
    layer = core.layers[0]
    h0 = core.input(x)
    u = layer.norm_memory(h0)
    outputs = []
    for t in range(len(x)):
        start = max(s for s in starts if s <= t)
        steps = range(max(start, t + 1 - CAPACITY), t + 1)  # the step itself included
        groups, encodings = [], []
        for place in sorted({int(places[s]) for s in steps}):
            members = [s for s in steps if places[s] == place]
            groups.append(u[members] + core.place_embedding(torch.tensor(place)))
            encodings.append(_sinusoids(torch.tensor(members) - start, WIDTH))  # time in episode
        read = _hierarchical_read(layer.memory, u[t], groups, encodings)
        outputs.append(_finish(core, layer, h0[t], read))
    return torch.stack(outputs)


def _core(name: str):
    torch.manual_seed(0)
    sizes = dict(width=WIDTH, num_layers=1, heads=2, top_k=TOP_K, capacity=CAPACITY)
    if name != "sat-pm":
        sizes["chunk_size"] = CHUNK
    if name != "hcam":
        sizes["num_places"] = PLACES
    return make_core(name, 5, **sizes)


def _run(core, form, x, resets, places):
    """Outputs ``[T, W]`` of one batch entry, stepping or over one window."""
    state = core.initial_state(1)
    place_steps = places[:, None]
    if form == "window":
        y, _ = core.forward_sequence(x[:, None], state, resets[:, None], place_steps)
        return y[:, 0]
    outputs = []
    for t in range(len(x)):
        y, state = core(x[t][None], state, resets[t][None], place_steps[t])
        outputs.append(y[0])
    return torch.stack(outputs)


@pytest.mark.parametrize("form", ["step", "window"])
@pytest.mark.parametrize("name", ["hcam", "sat-fifo", "sat-pm"])
def test_a_one_layer_core_equals_its_reference(name, form):
    core = _core(name)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS, 5, generator=g)
    places = torch.randint(0, PLACES, (STEPS,), generator=g)
    resets = torch.zeros(STEPS, dtype=torch.bool)
    resets[[0, RESET_AT]] = True
    with torch.no_grad():
        got = _run(core, form, x, resets, places)
        if name == "sat-pm":
            expected = _place_centric_reference(core, x, places, [0, RESET_AT])
        else:
            expected = _chunked_reference(core, x, places, [0, RESET_AT], name == "sat-fifo")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
