"""HCAM, Hierarchical Chunk Attention Memory (Lampinen et al. 2021, "Towards mental time travel").

The read (:class:`HierarchicalMemoryAttention`), as in DeepMind's reference module: memory is ``M``
chunks of ``C`` steps, contents ``[B, M, C, W]`` and one key per chunk ``[B, M, W]`` = the mean of
the chunk's contents. The query and the keys are projected by bias-free linear maps; logits
``q . k / sqrt(W)``; invalid chunks are masked; the ``top_k`` logits are kept and a softmax runs
over those ``k`` only. Then multi-head attention from the query into each selected chunk, with a
sinusoidal encoding of the position within the chunk added to the chunk's contents; the ``k``
results are weighted by the top-level softmax weights and summed. The read has no normalisation
and no residual inside; the layer adds them. On its own (``forward``) it reads a detached memory,
as the reference does.

The core (:class:`HCAMCore`) is a stack of ``num_layers`` pre-LayerNorm layers. The write path is
memrl's own (the reference code has none). Per layer ``l`` and step ``t``:

1. ``u = LayerNorm(h)``; ``u`` is written into layer ``l``'s accumulator ``[B, C, W]`` at the
   step's position in the current chunk.
2. ``h = h + local(u) + hcam(u)``: ``local`` is multi-head causal attention from ``u`` over the
   accumulator, i.e. over the current partial chunk up to and including step ``t`` (so the most
   recent steps, which are not yet in a committed chunk, are never invisible, and after a reset
   the read is never empty: it sees the step itself); ``hcam`` is the hierarchical read over the
   committed chunks.
3. ``h = h + FeedForward(LayerNorm(h))``. After the last layer, a final LayerNorm gives ``y``.

After the step, when the accumulator holds ``C`` steps the chunk is committed: its contents and its
key (the mean) are written into a free chunk slot, or, when all ``capacity`` slots are full, over
the oldest chunk (FIFO eviction). A partial chunk is never committed: it stays readable through
the local attention until it is full, and a reset discards it. Each layer keeps its own memory
stream (contents, keys, accumulator); the bookkeeping (position in the chunk, chunks written,
write time of each slot) is shared. Stepping never modifies the state it is given; so that a
commit does not copy the whole memory, a committed chunk's contents wait in a small ``pending``
buffer (read from there) and are copied into the memory in bulk (see :class:`HCAMCore`).

Every committed chunk and every accumulator entry belongs to the current episode: a reset
empties the memory before the step is processed (counts to zero, all slots free), so nothing is
ever read across an episode boundary. The chunk containing step ``t`` is read by the local
attention until it is committed and by the hierarchical read afterwards, never by both.

Gradients follow Transformer-XL (and the HCAM paper's agent): ``forward_sequence`` detaches the
state a training window starts from, and everything written inside the window (the accumulator's
entries, the chunks committed in the window and their keys) keeps its gradients, so a read late in
the window trains what earlier steps wrote. Stepping does not detach the state it is given (as
for the transformer core): detach states between windows (``memrl.memory.base.detach_state``).
With ``detach_window=True`` every entry is detached when written instead: no gradient from a
read reaches any earlier step, only the query's own step (a fully detached memory, for
comparison).

``forward_sequence`` computes the same thing for a window of ``T`` steps at once, layer by layer:
the chunks committed inside the window become extra candidates, masked per query so that each
step sees exactly what it would have seen when stepping. While the candidates are few (episodes
shorter than the memory), every query reads all of them in one matrix product per batch row, the
chunks it did not choose weighted 0, instead of gathering a copy of its ``top_k`` chunks: the same
function, and about half the cost of a training update on Ballet.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn
from torch.nn.functional import linear, one_hot

from memrl.memory.base import MemoryCore, State, detach_state
from memrl.memory.blocks import ChunkAttention, FeedForward
from memrl.memory.encoding import PlaceEmbedding, check_places, sinusoid_encoding
from memrl.memory.eviction import FIFO, choose_victim, first_true

PENDING_CHUNKS = 4
"""Committed chunks per batch entry held outside the chunk memory until a flush (see HCAMCore)."""
SHARED_READ_FACTOR = 16
"""A window reads its candidate chunks with one shared product while there are at most this many
times ``top_k`` of them (see ``HCAMCore._shared_slots``). At 4, every 256-step window (which
commits 17 chunks of 16) fell back to per-query copies of the chosen chunks, whose backward pass
dominated training; timed once by hand (forward and backward of ``evaluate_window`` on a
collected 4-env BalletGrid-2 window, 2-layer width-64 HCAM, chunks of 16, top-4, mean of 3, a
loaded machine): 0.54 s at 4 and 0.42 s at 16 for 256 steps, 0.30 s and 0.21 s for 128 steps;
the default HCAM on DelayedMatch (delays up to 128) the same at both. Both reads compute the
same function (the float64 test checks outputs and gradients of each)."""


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def take_chunks(
    memory: torch.Tensor, indices: torch.Tensor, layer: int | None = None
) -> torch.Tensor:
    """Rows ``indices`` ``[B, ...]`` of ``memory`` ``[B, M, *rest]`` -> ``[B, ..., *rest]``.

    With ``layer``, ``memory`` is ``[B, L, M, *rest]`` and rows come from that layer. One
    ``index_select`` over the flattened memory: a copy of the selected rows only (on CPU much
    faster than advanced indexing or ``gather`` with an expanded index, and no copy of a
    non-contiguous per-layer slice).
    """
    b = memory.shape[0]
    if layer is None:
        m, rest, base = memory.shape[1], memory.shape[2:], 0
        per_batch = m
    else:
        layers, m, rest = memory.shape[1], memory.shape[2], memory.shape[3:]
        per_batch, base = layers * m, layer * m
    shape = (b, *([1] * (indices.dim() - 1)))
    offsets = torch.arange(base, b * per_batch, per_batch, device=memory.device).view(shape)
    flat = memory.reshape(-1, *rest).index_select(0, (indices + offsets).flatten())
    return flat.view(*indices.shape, *rest)


class HierarchicalMemoryAttention(nn.Module):
    """The HCAM read: top-k chunks by key, multi-head attention inside each, weighted sum.

    Args:
        width: Width ``W`` of queries, keys and chunk contents.
        heads: Heads of the attention inside chunks; must divide ``width``.
        top_k: Number of chunks read per query.
    """

    def __init__(self, width: int, heads: int, top_k: int) -> None:
        super().__init__()
        _check_positive(width=width, top_k=top_k)
        self.width = width
        self.top_k = top_k
        self.query = nn.Linear(width, width, bias=False)
        self.key = nn.Linear(width, width, bias=False)
        self.within = ChunkAttention(width, heads)
        self._positions: dict[tuple[int, torch.device], torch.Tensor] = {}

    def position_encoding(self, chunk_size: int, device: torch.device) -> torch.Tensor:
        """``[C, W]`` sinusoidal encodings of the positions ``0 .. C - 1`` within a chunk."""
        cached = self._positions.get((chunk_size, device))
        if cached is None:
            cached = sinusoid_encoding(torch.arange(chunk_size, device=device), self.width)
            self._positions[(chunk_size, device)] = cached
        return cached

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-level logits ``(W_q q) . (W_k key) / sqrt(W)`` of every chunk.

        The query is mapped into key space once (``q_top = W_k^T W_q q / sqrt(W)``), so the cost
        is one dot product per chunk; keys are never projected.

        Args:
            query: ``[B, Q, W]``.
            keys: ``[B, M, W]``.

        Returns:
            ``q_top`` ``[B, Q, W]`` (so callers can add terms to the logits) and the logits
            ``[B, Q, M]``.
        """
        q_top = linear(query, self.query.weight) * (1.0 / math.sqrt(self.width))
        q_top = q_top @ self.key.weight  # [B, Q, W]
        return q_top, q_top @ keys.transpose(1, 2)

    def select(
        self, logits: torch.Tensor, chunk_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the ``top_k`` logits; softmax over those only; masked chunks get weight 0.

        Args:
            logits: ``[..., M]`` with ``M >= top_k``.
            chunk_mask: ``[..., M]`` bool (True = readable) or None.

        Returns:
            ``weights`` ``[..., k]`` and ``indices`` ``[..., k]`` of the selected chunks.
        """
        if chunk_mask is None:
            top_logits, indices = logits.topk(self.top_k, dim=-1)  # [..., k]
            return torch.softmax(top_logits, dim=-1), indices
        # Masked logits become the lowest float: exp() makes their weight exactly 0 next to any
        # readable chunk; a query with no readable chunk at all gets all-zero weights.
        lowest = torch.finfo(logits.dtype).min
        top_logits, indices = torch.where(chunk_mask, logits, lowest).topk(self.top_k, dim=-1)
        return torch.softmax(top_logits, dim=-1) * (top_logits != lowest), indices

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        contents: torch.Tensor,
        chunk_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Read the memory.

        Args:
            query: ``[B, W]`` one query per batch element.
            keys: ``[B, M, W]`` chunk keys (the means of the contents).
            contents: ``[B, M, C, W]`` chunk contents, without position encodings. No gradient
                flows into ``keys`` or ``contents``.
            chunk_mask: ``[B, M]`` bool, True where a chunk may be read, or None (all).

        Returns:
            ``[B, W]``.
        """
        b, _, c, w = contents.shape
        _, logits = self.score(query[:, None], keys.detach())  # [B, 1, M]
        mask = None if chunk_mask is None else chunk_mask[:, None]
        weights, indices = self.select(logits, mask)  # [B, 1, k]
        chosen = take_chunks(contents.detach(), indices[:, 0])  # [B, k, C, W], a fresh copy
        chosen.add_(self.position_encoding(c, contents.device))
        out: torch.Tensor = self.within(query, chosen, weights[:, 0])  # [B, W]
        return out


class HCAMLayer(nn.Module):
    """One pre-LayerNorm layer: local + hierarchical memory attention, then feed-forward.

    Args:
        width: Model width.
        heads: Attention heads.
        top_k: Chunks read per query.
        ff_hidden: Hidden width of the feed-forward block.
    """

    def __init__(self, width: int, heads: int, top_k: int, ff_hidden: int) -> None:
        super().__init__()
        self.norm_memory = nn.LayerNorm(width)
        self.local = ChunkAttention(width, heads)
        self.memory = HierarchicalMemoryAttention(width, heads, top_k)
        self.norm_ff = nn.LayerNorm(width)
        self.ff = FeedForward(width, ff_hidden)


class HCAMCore(MemoryCore):
    """A stack of HCAM layers with a chunked FIFO memory per layer.

    State (``L`` layers, ``M = capacity``, ``C = chunk_size``, ``W = width``):

    - ``contents`` ``[B, L, M, C, W]`` and ``keys`` ``[B, L, M, W]``: committed chunks;
    - ``accumulator`` ``[B, L, C, W]``: the chunk being filled;
    - ``accumulated`` ``[B]``: steps in the accumulator (the next step's position);
    - ``written`` ``[B]``: chunks committed in this episode (each chunk's number);
    - ``chunk_time`` ``[B, M]``: the number of the chunk in each slot, -1 for a free slot;
    - ``pending`` ``[B, P, L, C, W]`` and ``pending_slot`` ``[B, P]``: up to ``P`` committed
      chunks per batch entry whose contents are not yet copied into their slot of ``contents``
      (``pending_slot`` -1: unused). Stepping never modifies the state it is given, and copying
      the whole of ``contents`` to write one chunk would cost a full memory copy whenever any
      batch entry commits (with episodes out of phase, nearly every step); so a committed chunk
      waits here, is read from here, and all waiting chunks are copied into ``contents`` at once
      when some entry has no room left: one full copy every ``(P - 1) C`` steps or so.

    Args:
        input_dim: Width of the input features.
        width: Model width ``W`` (the output width).
        num_layers: Number of layers (the paper's agent has 4).
        heads: Attention heads; must divide ``width``.
        chunk_size: Steps per chunk ``C``.
        top_k: Chunks read per query; at most ``capacity``.
        capacity: Chunks kept per layer ``M``; beyond it the oldest chunk is evicted.
        ff_multiplier: Hidden width of the feed-forward blocks, in multiples of ``width``.
        detach_window: Detach every memory entry when it is written (no gradient from a read to
            an earlier step), instead of only the window's start state (see the module
            docstring).
    """

    slot_encoding: torch.Tensor  # [C, W] buffer

    def __init__(
        self,
        input_dim: int,
        width: int = 128,
        num_layers: int = 4,
        heads: int = 4,
        chunk_size: int = 32,
        top_k: int = 4,
        capacity: int = 64,
        ff_multiplier: int = 4,
        detach_window: bool = False,
    ) -> None:
        _check_positive(
            width=width,
            num_layers=num_layers,
            heads=heads,
            chunk_size=chunk_size,
            top_k=top_k,
            capacity=capacity,
            ff_multiplier=ff_multiplier,
        )
        if top_k > capacity:
            raise ValueError(f"top_k must be 1..capacity={capacity}, got {top_k}")
        super().__init__(input_dim, width)
        self.width = width
        self.num_layers = num_layers
        self.chunk_size = chunk_size
        self.top_k = top_k
        self.capacity = capacity
        self.pending_chunks = min(PENDING_CHUNKS, capacity)
        self.detach_window = detach_window
        self.input = nn.Linear(input_dim, width)
        self.layers = nn.ModuleList(
            HCAMLayer(width, heads, top_k, ff_multiplier * width) for _ in range(num_layers)
        )
        self.norm_out = nn.LayerNorm(width)
        self.register_buffer(
            "slot_encoding", sinusoid_encoding(torch.arange(chunk_size), width), persistent=False
        )
        self.place_embedding: PlaceEmbedding | None = None  # set by the place-aware SAT-FIFO

    @property
    def stack(self) -> list[HCAMLayer]:
        """The layers, bottom first."""
        return cast(list[HCAMLayer], list(self.layers))

    # -- state ------------------------------------------------------------------------------------

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        """Empty memories for ``batch_size`` fresh episodes."""
        b, n, m, c, w = batch_size, self.num_layers, self.capacity, self.chunk_size, self.width
        state = {
            "contents": torch.zeros(b, n, m, c, w, device=device),
            "keys": torch.zeros(b, n, m, w, device=device),
            "accumulator": torch.zeros(b, n, c, w, device=device),
            "accumulated": torch.zeros(b, dtype=torch.int64, device=device),
            "written": torch.zeros(b, dtype=torch.int64, device=device),
            "chunk_time": torch.full((b, m), -1, dtype=torch.int64, device=device),
            "pending": torch.zeros(b, self.pending_chunks, n, c, w, device=device),
            "pending_slot": torch.full(
                (b, self.pending_chunks), -1, dtype=torch.int64, device=device
            ),
        }
        if self.place_embedding is not None:
            state |= {
                "accumulator_places": torch.zeros(b, c, dtype=torch.int64, device=device),
                "chunk_places": torch.zeros(b, m, c, dtype=torch.int64, device=device),
                "chunk_place": torch.zeros(b, m, dtype=torch.int64, device=device),
                "strategy": torch.full((b,), FIFO, dtype=torch.int64, device=device),
            }
        return state

    def _start_episodes(self, state: State, reset: torch.Tensor) -> State:
        """Forget everything of the batch entries where ``reset`` is True."""
        state = dict(state)
        zero = torch.zeros_like(state["written"])
        state["accumulated"] = torch.where(reset, zero, state["accumulated"])
        state["written"] = torch.where(reset, zero, state["written"])
        state["chunk_time"] = state["chunk_time"].masked_fill(reset[:, None], -1)
        state["pending_slot"] = state["pending_slot"].masked_fill(reset[:, None], -1)
        return state

    def _check_places(self, places: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
        if self.place_embedding is None:
            raise RuntimeError("only a place-aware core reads places")
        num_places = self.place_embedding.num_places
        return check_places(places, shape, num_places, type(self).__name__)

    # -- reading ----------------------------------------------------------------------------------

    def _place_logits(self, q_top: torch.Tensor, entry_places: torch.Tensor) -> torch.Tensor:
        """The place part of chunk logits: ``q_top . mean_c E[place_c]`` ``[B, Q, M]``.

        Args:
            q_top: ``[B, Q, W]`` queries in key space.
            entry_places: ``[B, M, C]`` place of every entry of every chunk.
        """
        assert self.place_embedding is not None
        b, q, _ = q_top.shape
        _, m, c = entry_places.shape
        per_place = q_top @ self.place_embedding.table.T  # [B, Q, P]
        index = entry_places.reshape(b, 1, m * c).expand(b, q, m * c)
        return per_place.gather(2, index).view(b, q, m, c).mean(dim=-1)

    def _select(
        self,
        memory: HierarchicalMemoryAttention,
        u: torch.Tensor,
        keys: torch.Tensor,
        visible: torch.Tensor,
        entry_places: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top level: queries ``u`` ``[B, Q, W]`` pick ``top_k`` chunks by ``keys`` ``[B, M, W]``.

        ``visible`` ``[B, Q, M]`` says which chunks each query may read; ``entry_places``
        ``[B, M, C]`` (place-aware cores) adds the entries' place embeddings to the keys.

        Returns:
            ``weights`` and ``indices``, both ``[B, Q, k]``.
        """
        q_top, logits = memory.score(u, keys)  # [B, Q, W], [B, Q, M]
        if entry_places is not None:
            logits = logits + self._place_logits(q_top, entry_places)
        return memory.select(logits, visible)

    def _read_chosen(
        self,
        memory: HierarchicalMemoryAttention,
        u: torch.Tensor,
        chosen: torch.Tensor,
        weights: torch.Tensor,
        chosen_places: torch.Tensor | None,
    ) -> torch.Tensor:
        """Inside the chosen chunks ``[B, Q, k, C, W]`` (a fresh copy) -> ``[B, Q, W]``.

        One query each (stepping): the position encodings are added to the chunks; many (a
        window): they are folded into the attention instead of copying the chunks once more.
        """
        b, q, k, c, w = chosen.shape
        positions = self.slot_encoding if q > 1 else None
        if positions is None:
            chosen = chosen.add_(self.slot_encoding)  # `chosen` is a fresh copy
        if chosen_places is not None:
            assert self.place_embedding is not None
            chosen = chosen + self.place_embedding(chosen_places)
        out: torch.Tensor = memory.within(
            u.reshape(b * q, w),
            chosen.reshape(b * q, k, c, w),
            weights.reshape(b * q, k),
            None,
            positions,
        )
        return out.view(b, q, w)

    def _local_read(
        self,
        layer: HCAMLayer,
        u: torch.Tensor,
        entries: torch.Tensor,
        readable: torch.Tensor,
        entry_places: torch.Tensor | None,
    ) -> torch.Tensor:
        """Causal attention over the partial chunk: ``u`` ``[N, W]``, ``entries`` ``[N, C, W]``."""
        if entry_places is not None:
            assert self.place_embedding is not None
            entries = entries + self.place_embedding(entry_places)
        ones = torch.ones(u.shape[0], 1, device=u.device)
        out: torch.Tensor = layer.local(
            u, entries[:, None], ones, readable[:, None], self.slot_encoding
        )
        return out

    @staticmethod
    def _take_committed(
        state: State, indices: torch.Tensor, layer: int, capacity: int
    ) -> torch.Tensor:
        """Contents ``[B, Q, k, C, W]`` of committed chunks ``indices`` ``[B, Q, k]`` of a layer.

        From ``contents``, or from ``pending`` for chunks not yet copied there. Indices at or
        beyond ``capacity`` (used by ``forward_sequence`` for new chunks) give placeholders.
        """
        chosen = take_chunks(state["contents"], indices.clamp_max(capacity - 1), layer)
        waiting = state["pending_slot"][:, None, None] == indices[..., None]  # [B, Q, k, P]
        rows, queries, picks, entries = waiting.nonzero(as_tuple=True)
        if rows.numel():
            chosen[rows, queries, picks] = state["pending"][rows, entries, layer]
        return chosen

    @staticmethod
    def _flush(state: State) -> torch.Tensor:
        """A copy of ``contents`` with every pending chunk written into its slot."""
        rows, entries = (state["pending_slot"] >= 0).nonzero(as_tuple=True)
        contents = state["contents"].clone()
        contents[rows, :, state["pending_slot"][rows, entries]] = state["pending"][rows, entries]
        return contents

    # -- stepping ---------------------------------------------------------------------------------

    def forward(
        self,
        x: torch.Tensor,
        state: State,
        reset: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """One step: ``x`` ``[B, input_dim]`` -> ``y`` ``[B, width]`` and the next state."""
        reset = reset.to(torch.bool)
        state = self._start_episodes(state, reset)
        b, c = x.shape[0], self.chunk_size
        position = state["accumulated"]  # [B]
        slot = one_hot(position, c).bool()  # [B, C] where this step is written
        readable = torch.arange(c, device=x.device) <= position[:, None]  # [B, C]
        visible = (state["chunk_time"] >= 0)[:, None]  # [B, 1, M]
        accumulator_places = chunk_places = None
        if self.place_embedding is not None:
            places = self._check_places(places, (b,))
            accumulator_places = torch.where(slot, places[:, None], state["accumulator_places"])
            chunk_places = state["chunk_places"]
            state["accumulator_places"] = accumulator_places
        h = self.input(x)  # [B, W]
        accumulators = []
        for i, layer in enumerate(self.stack):
            u = layer.norm_memory(h)  # [B, W]
            stored = u.detach() if self.detach_window else u
            accumulator = torch.where(
                slot[..., None], stored[:, None], state["accumulator"][:, i]
            )  # [B, C, W]
            local = self._local_read(layer, u, accumulator, readable, accumulator_places)
            weights, indices = self._select(
                layer.memory, u[:, None], state["keys"][:, i], visible, chunk_places
            )  # [B, 1, k]
            chosen = self._take_committed(state, indices, i, self.capacity)  # [B, 1, k, C, W]
            chosen_places = None if chunk_places is None else take_chunks(chunk_places, indices)
            read = self._read_chosen(layer.memory, u[:, None], chosen, weights, chosen_places)
            read = read[:, 0]
            h = h + local + read
            h = h + layer.ff(layer.norm_ff(h))
            accumulators.append(accumulator)
        state["accumulator"] = torch.stack(accumulators, dim=1)  # [B, L, C, W]
        state["accumulated"] = (position + 1) % c
        commit = position == c - 1  # [B]
        if bool(commit.any()):
            state = self._commit(state, commit)
        return self.norm_out(h), state

    def _commit(self, state: State, commit: torch.Tensor) -> State:
        """Write the full accumulators of the batch entries ``commit`` into chunk slots."""
        m = self.capacity
        chunk_time, written = state["chunk_time"], state["written"]
        free = chunk_time < 0  # [B, M]
        has_free = free.any(dim=1)
        if self.place_embedding is not None:
            num_places = self.place_embedding.num_places
            counts = one_hot(state["accumulator_places"], num_places).sum(dim=1)  # [B, P]
            new_place = counts.argmax(dim=1)  # [B] the chunk's place: most of its steps
            victim = choose_victim(chunk_time, state["chunk_place"], state["strategy"], num_places)
        else:
            victim = chunk_time.argmin(dim=1)  # all slots full: the oldest chunk
        slot = torch.where(has_free, first_true(free), victim)  # [B]
        write = commit & (has_free | (victim < m))
        target = one_hot(slot.clamp_max(m - 1), m).bool() & write[:, None]  # [B, M]
        rows = write.nonzero().flatten()  # the batch entries that write a chunk
        accumulator = state["accumulator"]  # [B, L, C, W]
        keys = state["keys"].clone()
        keys[rows, :, slot[rows]] = accumulator[rows].mean(dim=2)
        state["keys"] = keys
        # The contents wait in `pending`: in the entry already waiting for this slot (its chunk
        # is evicted), else in a free entry; if some writer has neither, flush everything first.
        same = state["pending_slot"] == slot[:, None]  # [B, P]
        free = state["pending_slot"] < 0
        if bool((write & ~same.any(dim=1) & ~free.any(dim=1)).any()):
            state["contents"] = self._flush(state)
            state["pending_slot"] = torch.full_like(state["pending_slot"], -1)
            same, free = torch.zeros_like(same), torch.ones_like(free)
        entry = torch.where(same.any(dim=1), first_true(same), first_true(free))[rows]
        state["pending"] = state["pending"].index_put((rows, entry), accumulator[rows])
        state["pending_slot"] = state["pending_slot"].index_put((rows, entry), slot[rows])
        state["chunk_time"] = torch.where(target, written[:, None], chunk_time)
        state["written"] = written + commit.to(written.dtype)
        if self.place_embedding is not None:
            state["chunk_places"] = torch.where(
                target[..., None], state["accumulator_places"][:, None], state["chunk_places"]
            )
            state["chunk_place"] = torch.where(target, new_place[:, None], state["chunk_place"])
        return state

    # -- a window at once -------------------------------------------------------------------------

    def forward_sequence(
        self,
        x: torch.Tensor,
        state: State,
        resets: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """A window ``x`` ``[T, B, input_dim]`` -> ``y`` ``[T, B, width]``, equal to stepping.

        Exact and batched over time for FIFO memories (SAT-FIFO steps through windows with other
        strategies). The given state is detached; what the window writes keeps its gradients
        (unless ``detach_window``).
        """
        state = detach_state(state)
        t_len, b = resets.shape
        c, m, device = self.chunk_size, self.capacity, x.device
        resets = resets.to(torch.bool)

        # Bookkeeping, batch-major [B, T]: each step's episode, position in its chunk, chunk number.
        steps = torch.arange(t_len, device=device)  # [T]
        last_reset = torch.where(resets, steps[:, None], -1).cummax(dim=0).values.T  # [B, T]
        continuing = last_reset < 0  # [B, T] no reset yet in the window: the state's episode
        count0 = state["written"] * c + state["accumulated"]  # [B] steps of the state's episode
        count = torch.where(continuing, count0[:, None] + steps, steps - last_reset)  # [B, T]
        position, number = count % c, count // c  # [B, T]

        # The entries of each step's partial chunk: slot j holds step t - position + j, taken
        # from the state's accumulator (index j) if that is before the window, else from the
        # window (index C + step).
        slots = torch.arange(c, device=device)
        source_step = (steps - position)[..., None] + slots  # [B, T, C]
        local_source = torch.where(source_step >= 0, c + source_step, slots)
        local_source = local_source.clamp_max(c + t_len - 1)  # unreadable slots: any index
        readable = slots <= position[..., None]  # [B, T, C]
        rows = torch.arange(b, device=device)

        # Chunks committed inside the window: at most one per C steps.
        commit = position == c - 1  # [B, T]
        n_new = min(t_len, t_len // c + 1)
        new_step = torch.where(commit, steps, t_len).sort(dim=1).values[:, :n_new]  # [B, N]
        new_valid = new_step < t_len
        new_step = new_step.clamp_max(t_len - 1)
        new_number = number.gather(1, new_step)  # [B, N]
        new_episode = last_reset.gather(1, new_step)  # [B, N]

        # What each step may read: the last `capacity` chunks of its own episode, committed
        # before it.
        oldest = (number - m)[..., None]  # [B, T, 1]
        old_time = state["chunk_time"][:, None]  # [B, 1, M]
        old_visible = (old_time >= 0) & continuing[..., None] & (old_time >= oldest)
        new_visible = (
            new_valid[:, None]
            & (new_step[:, None] < steps[:, None])
            & (new_episode[:, None] == last_reset[..., None])
            & (new_number[:, None] >= oldest)
        )  # [B, T, N]
        visible = torch.cat([old_visible, new_visible], dim=-1)  # [B, T, M + N]

        local_places = all_places = None
        if self.place_embedding is not None:
            place_steps = self._check_places(places, (t_len, b)).T  # [B, T]
            local_places = (
                torch.cat([state["accumulator_places"], place_steps], 1)
                .gather(1, local_source.reshape(b, t_len * c))
                .view(b, t_len, c)
            )
            all_places = torch.cat([state["chunk_places"], take_chunks(local_places, new_step)], 1)

        shared = self._shared_slots(state["chunk_time"], n_new)
        h = self.input(x).transpose(0, 1)  # [B, T, W]
        w = self.width
        flat_readable = readable.reshape(b * t_len, c)
        final_local, final_contents, final_keys = [], [], []
        for i, layer in enumerate(self.stack):
            u = layer.norm_memory(h)  # [B, T, W]
            stored = u.detach() if self.detach_window else u
            sources = torch.cat([state["accumulator"][:, i], stored], dim=1)  # [B, C+T, W]
            local_entries = take_chunks(sources, local_source)  # [B, T, C, W]
            local = self._local_read(
                layer,
                u.reshape(b * t_len, w),
                local_entries.reshape(b * t_len, c, w),
                flat_readable,
                None if local_places is None else local_places.reshape(b * t_len, c),
            ).view(b, t_len, w)
            new_contents = take_chunks(local_entries, new_step)  # [B, N, C, W]
            keys = torch.cat([state["keys"][:, i], new_contents.mean(dim=2)], dim=1)  # [B, M+N, W]
            weights, indices = self._select(layer.memory, u, keys, visible, all_places)
            if shared is not None:
                read = self._read_shared(
                    layer.memory, state, i, u, weights, indices, new_contents, all_places, shared
                )
            else:
                # The chosen chunks: slots < M from the state's memory, the others new here.
                chosen = self._take_committed(state, indices, i, m)  # [B, T, k, C, W]
                new_pick = (indices >= m).nonzero(as_tuple=True)  # (b, t, j) of new chunks
                chosen[new_pick] = new_contents[new_pick[0], indices[new_pick] - m]
                chosen_places = None if all_places is None else take_chunks(all_places, indices)
                read = self._read_chosen(layer.memory, u, chosen, weights, chosen_places)
            h = h + local + read
            h = h + layer.ff(layer.norm_ff(h))
            final_local.append(local_entries[:, -1])
            final_contents.append(new_contents)
            final_keys.append(keys[:, m:])
        y = self.norm_out(h).transpose(0, 1)  # [T, B, W]

        # The state after the window: the last `capacity` chunks of the final episode sit in
        # slots number % capacity (FIFO fills free slots in order, then overwrites the oldest).
        final_number = number[:, -1] + commit[:, -1].to(number.dtype)  # [B]
        started = ~continuing[:, -1]  # [B] the final episode began inside the window
        kept = (
            new_valid
            & (new_episode == last_reset[:, -1:])
            & (new_number >= (final_number - m)[:, None])
        )  # [B, N]
        writes = kept[..., None] & ((new_number % m)[..., None] == torch.arange(m, device=device))
        has_writer = writes.any(dim=1)  # [B, M]
        writer = writes.to(torch.int64).argmax(dim=1)  # [B, M]
        last_readable = readable[:, -1]  # [B, C]
        new_state = dict(state)
        new_state["accumulator"] = torch.where(
            last_readable[:, None, :, None], torch.stack(final_local, 1), state["accumulator"]
        )
        write_rows, write_slots = has_writer.nonzero(as_tuple=True)
        written_chunks = writer[write_rows, write_slots]
        contents, keys = self._flush(state), state["keys"].clone()
        for memory, chunks in ((contents, final_contents), (keys, final_keys)):
            memory[write_rows, :, write_slots] = torch.stack(chunks, 1)[
                write_rows, :, written_chunks
            ]
        new_state["contents"], new_state["keys"] = contents, keys
        new_state["pending_slot"] = torch.full_like(state["pending_slot"], -1)
        old_time = state["chunk_time"].masked_fill(started[:, None], -1)
        new_state["chunk_time"] = torch.where(has_writer, new_number.gather(1, writer), old_time)
        new_state["written"] = final_number
        new_state["accumulated"] = (position[:, -1] + 1) % c
        if self.place_embedding is not None:
            assert local_places is not None
            new_state["accumulator_places"] = torch.where(
                last_readable, local_places[:, -1], state["accumulator_places"]
            )
            new_chunk_places = take_chunks(local_places, new_step)  # [B, N, C]
            counts = one_hot(new_chunk_places, self.place_embedding.num_places).sum(dim=2)
            new_state["chunk_places"] = torch.where(
                has_writer[..., None],
                new_chunk_places[rows[:, None], writer],
                state["chunk_places"],
            )
            new_state["chunk_place"] = torch.where(
                has_writer, counts.argmax(dim=2).gather(1, writer), state["chunk_place"]
            )
        return y, new_state

    def _shared_slots(self, chunk_time: torch.Tensor, n_new: int) -> int | None:
        """How many of the state's slots a window reads in one shared product, or None.

        The queries of a window mostly read the same few chunks. Reading all candidate chunks
        (the occupied slots ``0 .. S - 1``, which FIFO fills in order, then the window's ``N``
        new chunks) with one matrix product per batch row costs ``S + N`` chunks per query but
        no per-query copy of the ``top_k`` chosen ones; it is the faster read while
        ``S + N <= SHARED_READ_FACTOR * top_k``. Returns ``S`` (at least 1) then, else None.
        """
        occupied = (chunk_time >= 0).any(dim=0).nonzero()
        slots = int(occupied[-1]) + 1 if occupied.numel() else 1
        return slots if slots + n_new <= SHARED_READ_FACTOR * self.top_k else None

    def _read_shared(
        self,
        memory: HierarchicalMemoryAttention,
        state: State,
        layer: int,
        u: torch.Tensor,
        weights: torch.Tensor,
        indices: torch.Tensor,
        new_contents: torch.Tensor,
        all_places: torch.Tensor | None,
        slots: int,
    ) -> torch.Tensor:
        """A window's read of slots ``0 .. slots - 1`` and its new chunks, shared by all queries.

        Args:
            memory: The layer's hierarchical read.
            state: The state the window starts from.
            layer: The layer's index.
            u: ``[B, T, W]`` queries.
            weights: ``[B, T, k]`` the top-level weights of the chosen chunks (0 for masked
                chunks, whose indices may point anywhere).
            indices: ``[B, T, k]`` the chosen chunks: slots ``< M``, new chunks ``M + j``.
            new_contents: ``[B, N, C, W]`` the chunks committed inside the window.
            all_places: ``[B, M + N, C]`` entry places (place-aware cores) or None.
            slots: ``S``, every readable slot of the state is below it.
        """
        m = self.capacity
        old = state["contents"][:, layer, :slots]  # [B, S, C, W]
        pending = state["pending_slot"]
        rows, entries = ((pending >= 0) & (pending < slots)).nonzero(as_tuple=True)
        if rows.numel():  # chunks committed while stepping wait in `pending`, not in `contents`
            old = old.clone()
            old[rows, pending[rows, entries]] = state["pending"][rows, entries, layer]
        chunks = torch.cat([old, new_contents], dim=1)  # [B, S + N, C, W]
        if all_places is not None:
            assert self.place_embedding is not None
            places = torch.cat([all_places[:, :slots], all_places[:, m:]], dim=1)
            chunks = chunks + self.place_embedding(places)
        column = torch.where(indices < m, indices.clamp_max(slots - 1), indices - m + slots)
        dense = torch.zeros(*u.shape[:2], chunks.shape[1], device=u.device, dtype=weights.dtype)
        dense = dense.scatter_add(2, column, weights)  # [B, T, S + N]
        return memory.within.read_shared(u, chunks, dense, self.slot_encoding)
