"""``memrl play``: a person plays an environment in the terminal, one typed action per step."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium

QUIT_WORDS = ("q", "quit", "exit")
"""What a player types to stop (case-insensitive)."""


def action_names(env: gymnasium.Env) -> tuple[str, ...]:
    """Names of a discrete env's actions: ``env.unwrapped.action_names`` if set, else indices."""
    space = env.action_space
    if not isinstance(space, gymnasium.spaces.Discrete):
        raise ValueError(
            f"memrl play needs a Discrete action space, {env.spec.id if env.spec else env} "
            f"has {space}; drive continuous envs from Python instead"
        )
    names = getattr(env.unwrapped, "action_names", None)
    if names is None:
        return tuple(str(i) for i in range(space.n))
    return tuple(str(n) for n in names)


def parse_action(text: str, names: tuple[str, ...]) -> int | None:
    """Read an action typed as its index or its name (case-insensitive); None if neither."""
    text = text.strip()
    if text.isdigit() and int(text) < len(names):
        return int(text)
    lowered = [n.lower() for n in names]
    return lowered.index(text.lower()) if text.lower() in lowered else None


def play(
    env_id: str,
    seed: int | None = None,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    episodes: int = 1,
) -> list[float]:
    """Play ``episodes`` episodes of ``env_id`` with actions read from ``read``.

    An empty line repeats the previous action; ``q``, ``quit`` or ``exit`` stops (as does the
    end of the input).

    Args:
        env_id: A registered id with a Discrete action space and an ``ansi`` render mode.
        seed: Seed of the first episode.
        read: Prompt function returning the typed line (``input`` by default).
        write: Output function (``print`` by default).
        episodes: Number of episodes to play.

    Returns:
        The return of each finished episode.
    """
    env = gymnasium.make(env_id, render_mode="ansi")
    names = action_names(env)
    legend = "  ".join(f"{i}={n}" for i, n in enumerate(names))
    write(f"{env_id}: type an action ({legend}); Enter repeats the last; 'q' or 'quit' stops.")
    returns: list[float] = []
    last = 0
    for episode in range(episodes):
        env.reset(seed=seed if episode == 0 else None)
        total, done = 0.0, False
        while not done:
            write(str(env.render()))
            try:
                line = read("action> ")
            except EOFError:
                line = QUIT_WORDS[0]
            if line.strip().lower() in QUIT_WORDS:
                env.close()
                return returns
            action = last if not line.strip() else parse_action(line, names)
            if action is None:
                write(f"unknown action {line.strip()!r}; allowed: {legend}")
                continue
            last = action
            _, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = terminated or truncated
        write(str(env.render()))
        outcome = "success" if info.get("is_success") else "no success"
        write(f"episode {episode + 1} over: return {total:g} ({outcome})")
        returns.append(total)
    env.close()
    return returns
