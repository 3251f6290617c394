"""HCAM's maths against references written here from the paper's formulas (no shared code)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.functional import scaled_dot_product_attention

from memrl.memory.hcam import HCAMCore, HierarchicalMemoryAttention

B, M, C, W, H = 3, 6, 4, 8, 2


def _sinusoids(length: int, width: int) -> torch.Tensor:
    """Transformer sinusoids, written out: sin for the first half of features, cos for the rest."""
    table = torch.zeros(length, width, dtype=torch.float64)
    half = width // 2
    for p in range(length):
        for i in range(half):
            angle = p / (10000.0 ** (2 * i / width))
            table[p, i] = math.sin(angle)
            table[p, half + i] = math.cos(angle)
    return table.float()


def _memory(seed: int, chunks: int = M, chunk_size: int = C):
    g = torch.Generator().manual_seed(seed)
    contents = torch.randn(B, chunks, chunk_size, W, generator=g)
    keys = contents.mean(dim=2)  # HCAM: a chunk's key is the mean of its contents
    query = torch.randn(B, W, generator=g)
    return query, keys, contents


def _attention(seed: int, top_k: int, heads: int = H) -> HierarchicalMemoryAttention:
    torch.manual_seed(seed)
    return HierarchicalMemoryAttention(W, heads, top_k)


def _two_level_reference(attention, query, keys, contents, mask, top_k, heads=H):
    """Lampinen et al.'s read, projecting every entry the textbook way."""
    wq, wk = attention.query.weight, attention.key.weight
    logits = torch.einsum("bd,bmd->bm", query @ wq.T, keys @ wk.T) / math.sqrt(W)
    logits = logits.masked_fill(~mask, -math.inf)
    top_logits, top_index = logits.topk(top_k, dim=1)
    top_weights = torch.softmax(top_logits, dim=1)  # over the k kept chunks only
    inner = attention.within
    d = W // heads
    out = torch.zeros(B, W)
    for b in range(B):
        for j in range(top_k):
            entries = contents[b, top_index[b, j]] + _sinusoids(contents.shape[2], W)  # [C, W]
            q = (inner.query.weight @ query[b]).view(heads, d)  # [H, d]
            k = (entries @ inner.key.weight.T).view(-1, heads, d)  # [C, H, d]
            v = (entries @ inner.value.weight.T).view(-1, heads, d)
            a = torch.softmax(torch.einsum("hd,chd->hc", q, k) / math.sqrt(d), dim=1)
            read = inner.output.weight @ torch.einsum("hc,chd->hd", a, v).reshape(W)
            out[b] += top_weights[b, j] * read
    return out


@pytest.mark.parametrize("top_k", [M, 3, 1])
def test_read_equals_the_two_level_reference(top_k):
    attention = _attention(0, top_k)
    query, keys, contents = _memory(1)
    mask = torch.ones(B, M, dtype=torch.bool)
    mask[1, 2] = False  # an unreadable chunk (another episode's, or an empty slot)
    mask[2, :2] = False
    with torch.no_grad():
        got = attention(query, keys, contents, mask)
        # Where fewer chunks are readable than asked for, the masked ones weigh exactly zero.
        expected = _two_level_reference(attention, query, keys, contents, mask, top_k)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_top_k_equal_to_all_chunks_of_single_steps_is_exact_full_attention():
    """With one-step chunks (C = 1) and top_k = M, HCAM is exact softmax attention over memory."""
    attention = _attention(2, top_k=M)
    query, keys, contents = _memory(3, chunk_size=1)
    with torch.no_grad():
        got = attention(query, keys, contents)
        inner = attention.within
        q = (query @ attention.query.weight.T)[:, None, None]  # [B, 1, 1, W] one head of width W
        k = (keys @ attention.key.weight.T)[:, None]  # [B, 1, M, W]
        entries = contents[:, :, 0] + _sinusoids(1, W)  # [B, M, W]
        v = (entries @ inner.value.weight.T @ inner.output.weight.T)[:, None]  # [B, 1, M, W]
        exact = scaled_dot_product_attention(q, k, v)[:, 0, 0]  # fused kernel, 1/sqrt(W)
    torch.testing.assert_close(got, exact, atol=1e-5, rtol=0)


def test_per_chunk_softmax_recombined_by_chunk_partition_weights_is_exact_attention():
    """Exact attention over all M*C entries = sum_i (Z_i / Z) attention within chunk i.

    The inner read recombines per-chunk softmaxes exactly when each chunk's weight is its share of
    the softmax normaliser; HCAM's top level approximates those weights from the chunk means.
    """
    attention = _attention(4, top_k=M, heads=1)
    inner = attention.within
    query, _, contents = _memory(5)
    entries = contents + _sinusoids(C, W)  # [B, M, C, W]
    with torch.no_grad():
        q = query @ inner.query.weight.T  # [B, W]
        k = entries @ inner.key.weight.T  # [B, M, C, W]
        v = entries @ inner.value.weight.T
        logits = torch.einsum("bd,bmcd->bmc", q, k) / math.sqrt(W)
        partition_weights = torch.softmax(logits.logsumexp(dim=2), dim=1)  # Z_i / Z, [B, M]
        got = inner(query, entries, partition_weights)
        exact = (
            scaled_dot_product_attention(
                q[:, None, None], k.reshape(B, 1, M * C, W), v.reshape(B, 1, M * C, W)
            )[:, 0, 0]
            @ inner.output.weight.T
        )
    torch.testing.assert_close(got, exact, atol=1e-5, rtol=0)


def test_top_k_keeps_the_chunks_whose_keys_match_the_query():
    attention = _attention(6, top_k=1)
    with torch.no_grad():
        attention.query.weight.copy_(torch.eye(W))
        attention.key.weight.copy_(torch.eye(W))
    _, _, contents = _memory(7)
    contents[:, 4] += 10 * torch.eye(W)[0]  # chunk 4 stands out along feature 0
    keys = contents.mean(dim=2)
    query = 10 * torch.eye(W)[0].expand(B, W)
    _, logits = attention.score(query[:, None], keys)
    weights, index = attention.select(logits, None)
    assert index[:, 0, 0].tolist() == [4] * B
    assert torch.equal(weights, torch.ones(B, 1, 1))


def test_gradients_reach_the_query_and_projections_but_not_stored_memory():
    attention = _attention(8, top_k=2)
    query, keys, contents = _memory(9)
    query.requires_grad_(True)
    keys.requires_grad_(True)
    contents.requires_grad_(True)
    attention(query, keys, contents).square().sum().backward()
    assert query.grad is not None and query.grad.abs().sum() > 0
    for name, parameter in attention.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert keys.grad is None and contents.grad is None


def test_the_core_stores_memory_detached_and_trains_through_the_query():
    """With ``detach_window``: the fully detached memory."""
    torch.manual_seed(10)
    core = HCAMCore(
        5, width=W, heads=H, chunk_size=2, top_k=2, capacity=4, num_layers=2, detach_window=True
    )
    x = torch.randn(9, 2, 5, requires_grad=True)
    resets = torch.zeros(9, 2, dtype=torch.bool)
    state = core.initial_state(2)
    outputs = []
    for t in range(9):
        y, state = core(x[t], state, resets[t])
        outputs.append(y)
    for key, value in state.items():
        assert value.grad_fn is None and not value.requires_grad, key
    outputs[-1].square().sum().backward()
    assert x.grad is not None
    assert x.grad[-1].abs().sum() > 0  # the query's own step
    # Earlier steps reach the last output only through stored (detached) memory: no gradient.
    assert x.grad[:-1].abs().sum() == 0


def test_write_path_commits_full_chunks_and_evicts_the_oldest_beyond_capacity():
    torch.manual_seed(11)
    core = HCAMCore(W, width=W, heads=H, chunk_size=2, top_k=1, capacity=3, num_layers=1)
    state = core.initial_state(1)
    layer_inputs = []
    for t in range(11):  # 5 full chunks and one step of a sixth
        x = torch.randn(1, W)
        layer_inputs.append(core.layers[0].norm_memory(core.input(x)).detach())
        _, state = core(x, state, torch.tensor([t == 0]))
        committed = (t + 1) // 2
        assert state["written"].item() == committed
        assert state["accumulated"].item() == (t + 1) % 2
        kept = sorted(state["chunk_time"][0][state["chunk_time"][0] >= 0].tolist())
        assert kept == list(range(max(0, committed - 3), committed))  # the last 3 chunks
    steps = torch.cat(layer_inputs)  # [11, W]
    contents = core._flush(state)  # chunks still waiting in `pending` written to their slots
    for slot, number in enumerate(state["chunk_time"][0].tolist()):
        chunk = steps[2 * number : 2 * number + 2]
        torch.testing.assert_close(contents[0, 0, slot], chunk)
        torch.testing.assert_close(state["keys"][0, 0, slot], chunk.mean(dim=0))
    torch.testing.assert_close(state["accumulator"][0, 0, 0], steps[10])


def test_the_partial_chunk_is_read_by_the_local_attention():
    """Steps not yet committed are visible: changing one changes later outputs of its chunk."""
    torch.manual_seed(12)
    core = HCAMCore(5, width=W, heads=H, chunk_size=4, top_k=1, capacity=2, num_layers=1)
    x = torch.randn(3, 1, 5)
    resets = torch.zeros(3, 1, dtype=torch.bool)
    resets[0] = True
    y, state = core.forward_sequence(x, core.initial_state(1), resets)
    assert (state["chunk_time"] == -1).all()  # nothing committed yet
    x_changed = x.clone()
    x_changed[0] += 1.0
    y_changed, _ = core.forward_sequence(x_changed, core.initial_state(1), resets)
    assert not torch.allclose(y[2], y_changed[2])


def test_stepping_never_modifies_the_state_it_is_given_and_flushes_pending_chunks():
    """Chunks wait in `pending` and are flushed into `contents` in bulk; reads see them anyway."""
    torch.manual_seed(13)
    core = HCAMCore(5, width=W, heads=H, chunk_size=2, top_k=2, capacity=5, num_layers=2)
    assert core.pending_chunks == 4
    batch, steps = 3, 40
    x = torch.randn(steps, batch, 5)
    resets = torch.zeros(steps, batch, dtype=torch.bool)
    resets[0] = True
    resets[3, 1] = resets[8, 2] = True  # out-of-phase episodes: commits on different steps
    state = core.initial_state(batch)
    flushes = 0
    outputs = []
    with torch.no_grad():
        for t in range(steps):
            kept = {k: v.clone() for k, v in state.items()}
            y, next_state = core(x[t], state, resets[t])
            for key, value in state.items():
                assert torch.equal(value, kept[key]), key
            flushes += next_state["contents"] is not state["contents"]
            outputs.append(y)
            state = next_state
    assert 0 < flushes < steps // 4  # copies of the whole memory are rare
    # The same steps, flushing after every step (pending always empty when read), agree.
    state = core.initial_state(batch)
    with torch.no_grad():
        for t in range(steps):
            y, state = core(x[t], state, resets[t])
            state["contents"] = core._flush(state)
            state["pending_slot"] = torch.full_like(state["pending_slot"], -1)
            torch.testing.assert_close(y, outputs[t], atol=1e-6, rtol=0)


@pytest.mark.parametrize("core_name", ["hcam", "sat-fifo"])
def test_the_shared_window_read_equals_the_per_query_read(core_name, monkeypatch):
    """Both ways of reading a window give the same outputs and gradients, from a stepped state.

    In float64, so that the only difference left (the order of the sums) is far below the
    tolerance.
    """
    import memrl.memory.hcam as hcam_module
    from memrl.memory.sat import SATFIFOCore

    torch.manual_seed(10)
    sizes = dict(width=16, num_layers=2, heads=4, chunk_size=3, capacity=6, top_k=2)
    if core_name == "hcam":
        core: HCAMCore = HCAMCore(5, **sizes).double()
    else:
        core = SATFIFOCore(5, num_places=3, **sizes).double()
    places = torch.randint(0, 3, (30, 4)) if core_name == "sat-fifo" else None
    state = {
        key: value.double() if value.is_floating_point() else value
        for key, value in core.initial_state(4).items()
    }
    with torch.no_grad():  # a state with committed chunks, some still pending
        for t in range(10):
            step_places = None if places is None else places[t]
            _, state = core(torch.randn(4, 5).double(), state, torch.zeros(4), step_places)
    assert bool((state["pending_slot"] >= 0).any())
    x = torch.randn(20, 4, 5).double()
    resets = torch.zeros(20, 4, dtype=torch.bool)
    resets[7, 1] = True
    window_places = None if places is None else places[10:]
    outputs, grads = [], []
    for factor in (1_000, 0):  # every window shared, then none
        monkeypatch.setattr(hcam_module, "SHARED_READ_FACTOR", factor)
        core.zero_grad()
        y, new_state = core.forward_sequence(x, state, resets, window_places)
        y.square().sum().backward()
        outputs.append((y.detach(), new_state))
        grads.append([p.grad.clone() for p in core.parameters() if p.grad is not None])
    (y_shared, state_shared), (y_gathered, state_gathered) = outputs
    torch.testing.assert_close(y_shared, y_gathered, rtol=0, atol=1e-12)
    for key in state_shared:
        torch.testing.assert_close(state_shared[key], state_gathered[key])
    assert len(grads[0]) == len(list(core.parameters()))
    for shared, gathered in zip(*grads, strict=True):
        torch.testing.assert_close(shared, gathered, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"width": 0, "heads": 1, "top_k": 1}, "width must be an integer >= 1, got 0"),
        ({"width": W, "heads": H, "top_k": 0}, "top_k must be an integer >= 1, got 0"),
    ],
)
def test_attention_rejects_sizes_below_one_naming_them(options, message):
    with pytest.raises(ValueError, match=message):
        HierarchicalMemoryAttention(**options)
