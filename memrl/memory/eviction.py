"""Which memory entry to drop when a memory of limited capacity is full (Cho et al. 2024).

The Spatially-Aware Transformer's allocator chooses among four strategies. memrl's ids are the
indices into :data:`STRATEGIES`; the official code (``htm_pl.py``, ``ballet_environment_v2.py``)
numbers them differently:

=====  ==========  ========  ====================================================================
memrl  name        official  when a new entry arrives and the memory is full, ...
=====  ==========  ========  ====================================================================
0      ``fifo``    0         drop the oldest entry, then write (the memory keeps the latest)
1      ``lifo``    1         drop the incoming entry (the memory keeps the earliest)
2      ``mvfo``    3         drop the oldest entry of the most-visited place, then write
3      ``lvfo``    2         drop the oldest entry of the least-visited place, then write
=====  ==========  ========  ====================================================================

As in the official code, a place's "visits" are the number of its entries the memory holds now
(+1 when one is written, -1 when one is evicted), not the visits made in the episode; MVFO and
LVFO choose among the places that hold entries (a place with none is never chosen), before the
incoming entry is written, so they never drop it; ties between places go to the lowest place id
(numpy's ``argmax``/``argmin`` there). Of the chosen place the oldest entry goes (the official
code pops the head of the place's list, which it appends to in time order).

RoomBallet's question types (``memrl.envs.room_ballet.QUESTION_TYPES``) were designed for, in
memrl's ids: ``first_seen`` -> ``lifo`` (1), ``last_seen`` -> ``fifo`` (0), ``most_visited`` ->
``lvfo`` (3), ``least_visited`` -> ``mvfo`` (2); under these rules ``mvfo`` serves ``last_seen``
better than ``fifo`` (RoomBallet's docstring has the table). The allocator learns whatever mapping
scores best; no code relies on the ids lining up with the question types. Everything is
vectorised over the batch: each batch element has its own strategy.
"""

from __future__ import annotations

import torch

STRATEGIES: tuple[str, ...] = ("fifo", "lifo", "mvfo", "lvfo")
"""Strategy names; a strategy id is the index into this tuple."""

FIFO, LIFO, MVFO, LVFO = range(4)


def strategy_ids(strategy: str | int | torch.Tensor, batch_size: int) -> torch.Tensor:
    """A ``[batch_size]`` int64 tensor of strategy ids from a name, an id or a tensor of ids.

    Raises:
        ValueError: On an unknown name or an id outside ``0 .. 3``.
    """
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        return torch.full((batch_size,), STRATEGIES.index(strategy), dtype=torch.int64)
    ids = torch.as_tensor(strategy, dtype=torch.int64)
    if ids.dim() == 0:
        ids = ids.expand(batch_size)
    if ids.shape != (batch_size,):
        raise ValueError(f"strategy must have shape ({batch_size},), got {tuple(ids.shape)}")
    if ((ids < 0) | (ids >= len(STRATEGIES))).any():
        raise ValueError(f"strategy ids must be in 0..{len(STRATEGIES) - 1}, got {ids.tolist()}")
    return ids.clone()


def place_counts(times: torch.Tensor, places: torch.Tensor, num_places: int) -> torch.Tensor:
    """The visits of every place: how many entries of it the memory holds.

    Args:
        times: ``[B, N]`` int64 write time of each slot; -1 marks an empty slot.
        places: ``[B, N]`` int64 place of each slot (ignored for empty slots).
        num_places: Number of place ids.

    Returns:
        ``[B, num_places]`` int64.
    """
    held = (times >= 0).to(torch.int64)  # [B, N]
    counts = torch.zeros(times.shape[0], num_places, dtype=torch.int64, device=times.device)
    return counts.scatter_add(1, places, held)


def choose_victim(
    times: torch.Tensor, places: torch.Tensor, strategy: torch.Tensor, num_places: int
) -> torch.Tensor:
    """The entry a full memory drops when a new entry arrives (see the module docstring).

    Args:
        times: ``[B, N]`` int64 write time of each stored entry; -1 marks an empty slot, which is
            never chosen (call this only when the memory is full).
        places: ``[B, N]`` int64 place of each stored entry.
        strategy: ``[B]`` int64 strategy ids (see ``STRATEGIES``).
        num_places: Number of place ids.

    Returns:
        ``[B]`` int64 index of the dropped entry: ``0 .. N - 1`` a stored entry (the incoming
        one is written in its slot), ``N`` the incoming one (LIFO: it is not written).
    """
    n = times.shape[1]
    present = times >= 0  # [B, N]
    never = torch.iinfo(torch.int64).max

    def oldest(among: torch.Tensor) -> torch.Tensor:
        return torch.where(among, times, never).argmin(dim=1)  # [B]

    counts = place_counts(times, places, num_places)  # [B, P]
    held = counts > 0
    most = torch.where(held, counts, -1).amax(dim=1, keepdim=True)  # [B, 1]
    least = torch.where(held, counts, never).amin(dim=1, keepdim=True)  # [B, 1]
    most_place = first_true(held & (counts == most))  # [B] ties: the lowest place id
    least_place = first_true(held & (counts == least))
    chosen_place = torch.where(strategy == MVFO, most_place, least_place)  # [B]
    victim = oldest(present)  # fifo
    victim = torch.where(strategy == LIFO, torch.full_like(victim, n), victim)
    spatial = (strategy == MVFO) | (strategy == LVFO)
    return torch.where(spatial, oldest(present & (places == chosen_place[:, None])), victim)


def first_true(mask: torch.Tensor) -> torch.Tensor:
    """Index of the first True along the last dimension (0 where there is none): ``[..., N]``."""
    n = mask.shape[-1]
    order = torch.arange(n, 0, -1, device=mask.device)  # earlier index, larger score
    return (mask.to(torch.int64) * order).argmax(dim=-1)
