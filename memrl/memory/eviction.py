"""Which memory entry to drop when a memory of limited capacity is full (Cho et al. 2024).

The Spatially-Aware Transformer's allocator chooses among four strategies:

========  ==========================  =============================================================
id        name                        when a new entry arrives and the memory is full, drop ...
========  ==========================  =============================================================
0         ``fifo``                    the oldest entry (the memory keeps the latest)
1         ``lifo``                    the newest entry, i.e. the incoming one (keeps the earliest)
2         ``mvfo``                    the oldest entry of the most-visited place
3         ``lvfo``                    the oldest entry of the least-visited place
========  ==========================  =============================================================

The rule is "write, then drop one": the incoming entry is a candidate like the stored ones, with
the newest time. So LIFO drops the incoming entry, and MVFO/LVFO drop the incoming entry only if
its place is the most/least visited and the memory holds no other entry of that place. Places are
compared by visit counts (a visit is a maximal run of consecutive steps in one place); ties
between places go to the place holding the oldest entry. Everything is vectorised over the batch:
each batch element has its own strategy.
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


def count_visits(
    visits: torch.Tensor, last_place: torch.Tensor, places: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Update visit counts with one step: a visit starts whenever the place changes.

    Args:
        visits: ``[B, P]`` int64 visits per place so far in the episode.
        last_place: ``[B]`` int64 place of the previous step (-1 at an episode's start).
        places: ``[B]`` int64 place of this step.

    Returns:
        The new ``visits`` and ``last_place``.
    """
    new_visit = (places != last_place).to(visits.dtype)  # [B]
    return visits.scatter_add(1, places[:, None], new_visit[:, None]), places


def choose_victim(
    times: torch.Tensor,
    places: torch.Tensor,
    visits: torch.Tensor,
    new_time: torch.Tensor,
    new_place: torch.Tensor,
    strategy: torch.Tensor,
) -> torch.Tensor:
    """The entry a full memory drops when a new entry arrives.

    Args:
        times: ``[B, N]`` int64 write time of each stored entry; -1 marks an empty slot, which is
            never chosen (call this only when the memory is full).
        places: ``[B, N]`` int64 place of each stored entry.
        visits: ``[B, P]`` int64 visit counts per place (the current visit included).
        new_time: ``[B]`` int64 time of the incoming entry (later than every stored one).
        new_place: ``[B]`` int64 place of the incoming entry.
        strategy: ``[B]`` int64 strategy ids (see ``STRATEGIES``).

    Returns:
        ``[B]`` int64 index of the dropped entry: ``0 .. N - 1`` a stored entry, ``N`` the
        incoming one (it is not written).
    """
    n = times.shape[1]
    all_times = torch.cat([times, new_time[:, None]], dim=1)  # [B, N + 1]
    all_places = torch.cat([places, new_place[:, None]], dim=1)  # [B, N + 1]
    present = all_times >= 0  # [B, N + 1]
    never = torch.iinfo(torch.int64).max

    def oldest(among: torch.Tensor) -> torch.Tensor:
        return torch.where(among, all_times, never).argmin(dim=1)  # [B]

    place_visits = visits.gather(1, all_places.clamp_min(0))  # [B, N + 1]
    most = torch.where(present, place_visits, -1).amax(dim=1, keepdim=True)  # [B, 1]
    least = torch.where(present, place_visits, never).amin(dim=1, keepdim=True)  # [B, 1]
    victim = oldest(present)  # fifo
    victim = torch.where(strategy == LIFO, torch.full_like(victim, n), victim)
    victim = torch.where(strategy == MVFO, oldest(present & (place_visits == most)), victim)
    victim = torch.where(strategy == LVFO, oldest(present & (place_visits == least)), victim)
    return victim


def first_true(mask: torch.Tensor) -> torch.Tensor:
    """Index of the first True along the last dimension (0 where there is none): ``[..., N]``."""
    n = mask.shape[-1]
    order = torch.arange(n, 0, -1, device=mask.device)  # earlier index, larger score
    return (mask.to(torch.int64) * order).argmax(dim=-1)
