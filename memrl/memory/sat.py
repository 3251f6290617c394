"""Spatially-Aware Transformer memories (Cho, Yoon, Ahn, ICLR 2024).

Memory entries carry where they were written (a place id, e.g. RoomBallet's room) as well as
when. Two cores, both stacks of pre-LayerNorm layers like :class:`~memrl.memory.hcam.HCAMCore`:

- :class:`SATFIFOCore` (``sat-fifo``): HCAM's chunked memory with a place embedding added to every
  entry (in the chunk keys and inside the chunks), written chunk by chunk.
- :class:`SATPMCore` (``sat-pm``): place-centric memory. A pool of ``capacity`` entries, one per
  step, each tagged with its place and time; the hierarchical read goes over places first: a
  place's group is its entries in time order, its key the mean of the group plus the place
  embedding; the query keeps the ``top_k`` places and attends inside each, with a sinusoidal
  encoding of each entry's time (step in the episode) and the place embedding added.

When a memory is full, the eviction strategy (FIFO, LIFO, most- or least-visited-first-out, see
:mod:`memrl.memory.eviction`, which follows the official code: a place's visits are its entries
in memory) decides what goes. The strategy is part of the state, one id per batch entry
(``state["strategy"]``, FIFO at first); the Adaptive Memory Allocator sets it per episode with
:func:`set_strategy`. A reset keeps the strategy: set it at, or before, the first step of an
episode. In SAT-FIFO eviction works on whole chunks, a chunk's place being the place where most
of its steps were (ties: the lower id), a place's visits the number of its chunks in memory.

Gradients, as in :class:`~memrl.memory.hcam.HCAMCore`: entries written inside a training window
keep their gradients, the window's start state is detached (``detach_window=True``: every entry
is detached when written).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn.functional import one_hot

from memrl.memory.base import MemoryCore, State, detach_state
from memrl.memory.blocks import FeedForward
from memrl.memory.encoding import PlaceEmbedding, check_places, sinusoid_encoding
from memrl.memory.eviction import (
    FIFO,
    STRATEGIES,
    choose_victim,
    first_true,
    strategy_ids,
)
from memrl.memory.hcam import HCAMCore, HierarchicalMemoryAttention, _check_positive, take_chunks


def set_strategy(
    state: State, strategy: str | int | torch.Tensor, where: torch.Tensor | None = None
) -> State:
    """The state with new eviction strategies (for SAT cores).

    Args:
        state: A SAT core's state.
        strategy: A name (``"fifo"``, ``"lifo"``, ``"mvfo"``, ``"lvfo"``), an id, or a ``[B]``
            tensor of ids (e.g. ``AdaptiveMemoryAllocator.select``).
        where: ``[B]`` bool: change only these batch entries (e.g. the episodes starting now).

    Returns:
        A new state dict (the other tensors are shared, not copied).
    """
    if "strategy" not in state:
        raise ValueError("set_strategy needs the state of a SAT core (sat-fifo, sat-pm)")
    current = state["strategy"]
    ids = strategy_ids(strategy, current.shape[0]).to(current.device)
    if where is not None:
        ids = torch.where(where.to(torch.bool), ids, current)
    return {**state, "strategy": ids}


class SATFIFOCore(HCAMCore):
    """SAT-FIFO: HCAM with a place embedding on every memory entry.

    Place ids are stored with the entries (``accumulator_places``, ``chunk_places``) and their
    embeddings added when reading, so a learned embedding is trained through the read. Chunks
    are evicted by the batch entry's strategy (FIFO by default); ``forward_sequence`` is
    batched over time while every strategy is FIFO and steps otherwise.

    Args:
        input_dim: Width of the input features.
        width: Model width (the output width).
        num_layers: Number of layers.
        heads: Attention heads; must divide ``width``.
        chunk_size: Steps per chunk.
        top_k: Chunks read per query; at most ``capacity``.
        capacity: Chunks kept per layer.
        ff_multiplier: Feed-forward hidden width in multiples of ``width``.
        num_places: Number of place ids (places are ``0 .. num_places - 1``).
        learned_places: Learn the place embedding instead of keeping the sinusoids fixed.
        place_init: How the embedding starts: ``"sinusoid"`` or, when learned, ``"zeros"``
            (the core then starts as HCAM).
        detach_window: Detach every memory entry when it is written (no gradient from a read to
            an earlier step), instead of only the window's start state.
    """

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
        num_places: int = 32,
        learned_places: bool = False,
        place_init: str = "sinusoid",
        detach_window: bool = False,
    ) -> None:
        _check_positive(num_places=num_places)
        super().__init__(
            input_dim,
            width,
            num_layers,
            heads,
            chunk_size,
            top_k,
            capacity,
            ff_multiplier,
            detach_window,
        )
        self.place_embedding = PlaceEmbedding(
            num_places, width, learned=learned_places, init=place_init
        )

    def forward_sequence(
        self,
        x: torch.Tensor,
        state: State,
        resets: torch.Tensor,
        places: torch.Tensor | None = None,
        strategies: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """A window, equal to stepping; batched over time while every strategy is FIFO.

        Args:
            x: ``[T, B, input_dim]``.
            state: The state the window starts from.
            resets: ``[T, B]`` episode starts.
            places: ``[T, B]`` place ids.
            strategies: ``[T, B]`` the strategy in force at each step (each episode's, as the
                allocator set it when acting), or None: the state's throughout.
        """
        fifo = not bool((state["strategy"] != FIFO).any())
        if strategies is not None:
            fifo = fifo and not bool((strategies != FIFO).any())
        if fifo:  # HCAM's batched form (it keeps the state's strategy: FIFO)
            return super().forward_sequence(x, state, resets, places)
        return step_through(self, x, state, resets, places, strategies)


def step_through(
    core: MemoryCore,
    x: torch.Tensor,
    state: State,
    resets: torch.Tensor,
    places: torch.Tensor | None,
    strategies: torch.Tensor | None,
) -> tuple[torch.Tensor, State]:
    """A SAT core stepped through a window, each step under its strategy (if given).

    The window starts from ``state`` detached, as the cores' batched forms do.
    """
    state = detach_state(state)
    outputs = []
    for t in range(x.shape[0]):
        if strategies is not None:
            state = {**state, "strategy": strategies[t]}
        y, state = core(x[t], state, resets[t], None if places is None else places[t])
        outputs.append(y)
    return torch.stack(outputs), state


class SATPMLayer(nn.Module):
    """One pre-LayerNorm layer: hierarchical read over places, then feed-forward."""

    def __init__(self, width: int, heads: int, top_k: int, ff_hidden: int) -> None:
        super().__init__()
        self.norm_memory = nn.LayerNorm(width)
        self.memory = HierarchicalMemoryAttention(width, heads, top_k)
        self.norm_ff = nn.LayerNorm(width)
        self.ff = FeedForward(width, ff_hidden)


def group_by_place(
    entry_place: torch.Tensor, entry_time: torch.Tensor, group_places: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The place-centric layout: each asked place's entries, in time order.

    Args:
        entry_place: ``[B, N]`` place of each entry.
        entry_time: ``[B, N]`` write time of each entry, -1 for an empty slot.
        group_places: ``[B, G]`` the places to group.

    Returns:
        ``index`` ``[B, G, N]`` (entry slots, the place's entries first, oldest first) and
        ``mask`` ``[B, G, N]`` (True for the place's entries, False for the padding after them).
    """
    member = (entry_place[:, None] == group_places[..., None]) & (entry_time >= 0)[:, None]
    never = torch.iinfo(torch.int64).max
    order_key = torch.where(member, entry_time[:, None].expand_as(member), never)  # [B, G, N]
    sorted_key, index = order_key.sort(dim=-1, stable=True)
    return index, sorted_key != never


class SATPMCore(MemoryCore):
    """SAT-PM: a place-centric memory read hierarchically over places.

    Every step writes one entry (the layer's normalised input) before the layers read, so a step
    sees itself in its place's group. When all ``capacity`` slots are taken, the strategy picks
    the entry to drop (under LIFO the incoming one: the step then reads a memory without
    itself). ``forward_sequence`` runs the bookkeeping step by step, then each layer reads for
    the whole window at once.

    State (``L`` layers, ``N = capacity``, ``W = width``, ``P = num_places``):
    ``contents`` ``[B, L, N, W]``; ``entry_time`` ``[B, N]`` (step in the episode, -1 empty);
    ``time_encoding`` ``[B, N, W]`` (the sinusoid of each entry's time, computed once when it
    is written); ``entry_place`` ``[B, N]``; ``steps`` ``[B]`` (steps so far in the episode);
    ``strategy`` ``[B]``.

    Args:
        input_dim: Width of the input features.
        width: Model width (the output width).
        num_layers: Number of layers.
        heads: Attention heads; must divide ``width``.
        top_k: Places read per query; at most ``num_places``.
        capacity: Entries kept (steps), shared by all places.
        ff_multiplier: Feed-forward hidden width in multiples of ``width``.
        num_places: Number of place ids.
        learned_places: Learn the place embedding instead of keeping the sinusoids fixed.
        place_init: How the embedding starts: ``"sinusoid"`` or, when learned, ``"zeros"``.
        strategy: The eviction strategy of fresh states (``"fifo"``, ``"lifo"``, ``"mvfo"``,
            ``"lvfo"``): a fixed strategy, unless the allocator sets one per episode with
            :func:`set_strategy`.
        detach_window: Detach every entry when it is written (no gradient from a read to an
            earlier step), instead of only the window's start state.
    """

    def __init__(
        self,
        input_dim: int,
        width: int = 128,
        num_layers: int = 4,
        heads: int = 4,
        top_k: int = 4,
        capacity: int = 256,
        ff_multiplier: int = 4,
        num_places: int = 32,
        learned_places: bool = False,
        place_init: str = "sinusoid",
        strategy: str = "fifo",
        detach_window: bool = False,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        _check_positive(
            width=width,
            num_layers=num_layers,
            heads=heads,
            top_k=top_k,
            capacity=capacity,
            ff_multiplier=ff_multiplier,
            num_places=num_places,
        )
        if top_k > num_places:
            raise ValueError(f"top_k must be 1..num_places={num_places}, got {top_k}")
        super().__init__(input_dim, width)
        self.width = width
        self.num_layers = num_layers
        self.capacity = capacity
        self.num_places = num_places
        self.input = nn.Linear(input_dim, width)
        self.layers = nn.ModuleList(
            SATPMLayer(width, heads, top_k, ff_multiplier * width) for _ in range(num_layers)
        )
        self.norm_out = nn.LayerNorm(width)
        self.place_embedding = PlaceEmbedding(
            num_places, width, learned=learned_places, init=place_init
        )
        self.strategy = STRATEGIES.index(strategy)
        self.detach_window = detach_window

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        """Empty memories for ``batch_size`` fresh episodes (with the core's strategy)."""
        b, n = batch_size, self.capacity

        def ints(*shape: int, fill: int = 0) -> torch.Tensor:
            return torch.full(shape, fill, dtype=torch.int64, device=device)

        return {
            "contents": torch.zeros(b, self.num_layers, n, self.width, device=device),
            "entry_time": ints(b, n, fill=-1),
            "time_encoding": torch.zeros(b, n, self.width, device=device),
            "entry_place": ints(b, n),
            "steps": ints(b),
            "strategy": ints(b, fill=self.strategy),
        }

    def select_places(
        self,
        memory: HierarchicalMemoryAttention,
        u: torch.Tensor,
        contents: torch.Tensor,
        entry_time: torch.Tensor,
        entry_place: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The top level of the read: the ``top_k`` places for queries ``u`` ``[B, W]``.

        A place's key is the mean of its entries ``[B, N, W]`` plus its embedding; by linearity
        its logit is the mean of its entries' logits plus the embedding's logit. Places with no
        entry are masked.

        Returns:
            ``weights`` ``[B, k]`` (softmax over the k kept logits) and ``places`` ``[B, k]``.
        """
        b = u.shape[0]
        valid = entry_time >= 0  # [B, N]
        q_top, entry_logits = memory.score(u[:, None], contents)  # [B, 1, W], [B, 1, N]
        zeros = torch.zeros(b, self.num_places, device=u.device)
        summed = zeros.scatter_add(1, entry_place, entry_logits[:, 0] * valid)  # [B, P]
        counts = zeros.scatter_add(1, entry_place, valid.to(zeros.dtype))  # [B, P]
        logits = summed / counts.clamp_min(1) + q_top[:, 0] @ self.place_embedding.table.T
        return memory.select(logits, counts > 0)

    def _read(
        self,
        memory: HierarchicalMemoryAttention,
        u: torch.Tensor,
        contents: torch.Tensor,
        entry_time: torch.Tensor,
        entry_place: torch.Tensor,
        time_encoding: torch.Tensor,
    ) -> torch.Tensor:
        """Query ``u`` ``[B, W]`` reads entries ``[B, N, W]`` grouped by place -> ``[B, W]``.

        ``time_encoding`` ``[B, N, W]`` is added to the entries, the place embedding to each
        group.
        """
        weights, places = self.select_places(memory, u, contents, entry_time, entry_place)
        index, entry_mask = group_by_place(entry_place, entry_time, places)  # [B, k, N]
        entries = contents + time_encoding  # [B, N, W]
        groups = take_chunks(entries, index) + self.place_embedding(places)[:, :, None]
        out: torch.Tensor = memory.within(u, groups, weights, entry_mask)
        return out

    def _write(
        self, state: State, reset: torch.Tensor, places: torch.Tensor
    ) -> tuple[State, torch.Tensor]:
        """The bookkeeping of one step: the next state without its contents, and the written slot.

        Which slot a step writes (or none: ``target`` all False) depends on times, places and the
        strategy only, never on what the network computes, so ``forward_sequence`` can run it
        for a whole window before the layers read.

        Returns:
            The state's ``entry_time``, ``time_encoding``, ``entry_place``, ``steps`` and
            ``strategy`` after the step, and ``target`` ``[B, N]``.
        """
        reset = reset.to(torch.bool)
        entry_time = state["entry_time"].masked_fill(reset[:, None], -1)
        now = state["steps"].masked_fill(reset, 0)  # [B] this step's time in the episode

        # A free slot if any, else the strategy's victim is evicted and the entry takes its slot
        # (LIFO: the victim is the incoming entry, nothing is written).
        free = entry_time < 0  # [B, N]
        has_free = free.any(dim=1)
        victim = choose_victim(entry_time, state["entry_place"], state["strategy"], self.num_places)
        slot = torch.where(has_free, first_true(free), victim)  # [B]
        write = has_free | (victim < self.capacity)
        target = one_hot(slot.clamp_max(self.capacity - 1), self.capacity)
        target = target.bool() & write[:, None]  # [B, N]
        entry_time = torch.where(target, now[:, None], entry_time)
        entry_place = torch.where(target, places[:, None], state["entry_place"])
        time_encoding = torch.where(
            target[..., None], sinusoid_encoding(now, self.width)[:, None], state["time_encoding"]
        )  # [B, N, W]
        written = {
            "entry_time": entry_time,
            "time_encoding": time_encoding,
            "entry_place": entry_place,
            "steps": now + 1,
            "strategy": state["strategy"],
        }
        return written, target

    def forward(
        self,
        x: torch.Tensor,
        state: State,
        reset: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """One step: ``x`` ``[B, input_dim]`` -> ``y`` ``[B, width]`` and the next state."""
        places = check_places(places, (x.shape[0],), self.num_places, "SATPMCore")
        new_state, target = self._write(state, reset, places)
        entry_time, entry_place = new_state["entry_time"], new_state["entry_place"]
        h = self.input(x)  # [B, W]
        contents = []
        for i, layer in enumerate(cast(list[SATPMLayer], list(self.layers))):
            u = layer.norm_memory(h)
            stored = u.detach() if self.detach_window else u
            layer_contents = torch.where(
                target[..., None], stored[:, None], state["contents"][:, i]
            )  # [B, N, W]
            h = h + self._read(
                layer.memory, u, layer_contents, entry_time, entry_place,
                new_state["time_encoding"],
            )  # fmt: skip
            h = h + layer.ff(layer.norm_ff(h))
            contents.append(layer_contents)
        new_state["contents"] = torch.stack(contents, dim=1)
        return self.norm_out(h), new_state

    def forward_sequence(
        self,
        x: torch.Tensor,
        state: State,
        resets: torch.Tensor,
        places: torch.Tensor | None = None,
        strategies: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """A window ``x`` ``[T, B, input_dim]`` -> ``y`` ``[T, B, width]``, equal to stepping.

        ``strategies`` ``[T, B]`` is the strategy in force at each step (each episode's, as the
        allocator set it when acting), or None: the state's throughout.

        First the bookkeeping runs step by step (integer work on ``[B, N]``, no autograd): for
        every step and slot it records where the slot's entry comes from, a slot of the given
        state (index ``n``) or a step of the window (index ``N + s``). Then each layer reads for
        all ``T`` steps at once: its entries are gathered from the state's contents (detached)
        and the window's inputs of that layer, which is what stepping would have stored.
        """
        state = detach_state(state)
        t_len, b = resets.shape
        n = self.capacity
        places = check_places(places, (t_len, b), self.num_places, "SATPMCore")
        source = torch.arange(n, device=x.device).expand(b, n)  # [B, N] where each slot's entry is
        sources, times, entry_places = [], [], []
        bookkeeping = {key: value for key, value in state.items() if key != "contents"}
        with torch.no_grad():
            for t in range(t_len):
                if strategies is not None:
                    bookkeeping["strategy"] = strategies[t]
                bookkeeping, target = self._write(bookkeeping, resets[t], places[t])
                source = torch.where(target, n + t, source)
                sources.append(source)
                times.append(bookkeeping["entry_time"])
                entry_places.append(bookkeeping["entry_place"])
        source_steps = torch.stack(sources, dim=1)  # [B, T, N]
        entry_time = torch.stack(times, dim=1).reshape(b * t_len, n)
        entry_place = torch.stack(entry_places, dim=1).reshape(b * t_len, n)
        time_encoding = sinusoid_encoding(entry_time.clamp_min(0), self.width)  # [B*T, N, W]

        h = self.input(x).transpose(0, 1)  # [B, T, W]
        contents = []
        for i, layer in enumerate(cast(list[SATPMLayer], list(self.layers))):
            u = layer.norm_memory(h)  # [B, T, W]
            stored = u.detach() if self.detach_window else u
            layer_sources = torch.cat([state["contents"][:, i], stored], dim=1)  # [B, N+T, W]
            entries = take_chunks(layer_sources, source_steps)  # [B, T, N, W]
            read = self._read(
                layer.memory, u.reshape(b * t_len, -1), entries.reshape(b * t_len, n, -1),
                entry_time, entry_place, time_encoding,
            )  # fmt: skip
            h = h + read.view(b, t_len, -1)
            h = h + layer.ff(layer.norm_ff(h))
            contents.append(entries[:, -1])
        new_state = {**bookkeeping, "contents": torch.stack(contents, dim=1)}
        return self.norm_out(h).transpose(0, 1), new_state
