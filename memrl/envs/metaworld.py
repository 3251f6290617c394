"""What every memrl env on Meta-World shares: the protocol env, exact save/restore, rendering.

Meta-World v3 under the Continual World reset protocol, its exact save and restore (for pickling),
and headless MuJoCo rendering (CuedReach, the task streams and the dm_control tasks use them).

Meta-World and MuJoCo are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import sys
import weakref
from typing import Any

import numpy as np

_GL_BACKENDS: tuple[str, ...] = ("egl", "osmesa", "glfw")

_CAMERA = {"lookat": (0.0, 0.75, 0.15), "distance": 1.35, "azimuth": 135.0, "elevation": -30.0}
"""Free camera of the ``rgb_array`` render: the table seen from the front left, arm on the left."""

EPISODE_LENGTH = 200
"""Continual World's episode length for Meta-World tasks (Meta-World's own limit is 500)."""

_PLAIN_TYPES = (bool, int, float, str, type(None), np.generic)


def make_protocol_env(task: str, *, width: int = 480, height: int = 480) -> Any:
    """A raw Meta-World v3 env set up for the Continual World reset protocol.

    Goal observable, no ``Task`` object (positions come from the generator), positions
    re-sampled at every reset from ``env.np_random`` (assign a generator to it before resetting;
    ``env.seed(s)`` does), and no 500-step limit (the caller truncates).

    Args:
        task: A Meta-World v3 task name (``metaworld.env_dict.ALL_V3_ENVIRONMENTS``).
        width: Width of Meta-World's own renderer.
        height: Height of Meta-World's own renderer.

    Returns:
        The ``SawyerXYZEnv`` instance.

    Raises:
        ValueError: ``task`` is not a Meta-World v3 task.
    """
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    if task not in ALL_V3_ENVIRONMENTS:
        allowed = list(ALL_V3_ENVIRONMENTS)
        raise ValueError(f"task must be one of the Meta-World v3 tasks {allowed}, got {task!r}")
    env = ALL_V3_ENVIRONMENTS[task](reward_function_version="v2", width=width, height=height)
    # Goal observable, as MT benchmarks and Continual World: Meta-World's step clips the
    # observation to `sawyer_observation_space`, whose goal bounds are 0 when partially observable.
    env._partially_observable = False
    del env.sawyer_observation_space  # cached property: recompute for full observability
    env._set_task_called = True  # no Task object: positions come from the generator
    env._freeze_rand_vec = False  # re-sample positions at every reset...
    env.seeded_rand_vec = True  # ...from env.np_random, not numpy's global generator
    env.max_path_length = sys.maxsize  # the caller truncates; Meta-World raises past its limit
    return env


def _owns_memory(array: np.ndarray) -> bool:
    """Whether ``array``'s memory belongs to numpy (not a view into MuJoCo's model or data)."""
    base: Any = array
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return isinstance(base, np.ndarray)


def save_state(env: Any) -> dict[str, Any]:
    """Everything needed to put a protocol Meta-World env back exactly where it is.

    The env's plain attributes (step counter, frame stack, goal, reward bookkeeping, protocol
    flags), the random vector that placed objects and goal, and MuJoCo's full integration state
    (``mj_getState`` with ``mjSTATE_INTEGRATION``: time, qpos, qvel, act, warm start, controls,
    mocap poses). The generator is not included: it belongs to the caller.

    Args:
        env: A ``SawyerXYZEnv`` built by :func:`make_protocol_env` and reset at least once.

    Returns:
        A picklable dict for :func:`restore_state`.
    """
    import mujoco

    plain: dict[str, Any] = {}
    for name, value in vars(env).items():
        if isinstance(value, _PLAIN_TYPES):
            plain[name] = value
        elif isinstance(value, np.ndarray) and _owns_memory(value):
            plain[name] = value.copy()
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    physics = np.empty(mujoco.mj_stateSize(env.model, spec), dtype=np.float64)
    mujoco.mj_getState(env.model, env.data, physics, spec)
    rand_vec = env._last_rand_vec
    return {
        "attributes": plain,
        "rand_vec": None if rand_vec is None else np.array(rand_vec, copy=True),
        "physics": physics,
    }


def restore_state(env: Any, state: dict[str, Any], np_random: np.random.Generator) -> None:
    """Put a freshly built protocol env back into a state saved by :func:`save_state`.

    Args:
        env: A new ``SawyerXYZEnv`` from :func:`make_protocol_env` for the same task.
        state: What :func:`save_state` returned.
        np_random: The generator the env draws positions from (assigned to ``env.np_random``).
    """
    import mujoco

    env.np_random = np_random
    # Replay the reset with the episode's random vector frozen: this redoes whatever the task
    # writes into the MuJoCo model (goal sites) and its per-episode attributes.
    env._freeze_rand_vec = True
    env._last_rand_vec = state["rand_vec"]
    env.reset()
    env.__dict__.update(state["attributes"])  # step counter, frame stack, ... (and unfreeze)
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    mujoco.mj_setState(env.model, env.data, state["physics"], spec)
    mujoco.mj_forward(env.model, env.data)  # positions, contacts, sites for observations
    # mj_forward overwrote the solver's warm start with its own solution; put the saved one back,
    # so that the next step starts from exactly the same numbers.
    mujoco.mj_setState(env.model, env.data, state["physics"], spec)


def gl_backend() -> str:
    """The OpenGL back-end for offscreen rendering.

    ``MUJOCO_GL`` decides when set. Otherwise a machine with a display (or not running Linux) uses
    GLFW, and a headless Linux machine uses EGL, which Mesa provides without a GPU. (Falling back
    from one back-end to another within a process does not work: importing ``mujoco.egl`` fixes
    PyOpenGL's platform for the process.)
    """
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        if chosen not in _GL_BACKENDS:
            raise ValueError(f"MUJOCO_GL must be one of {list(_GL_BACKENDS)}, got {chosen!r}")
        return chosen
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return "glfw" if has_display or not sys.platform.startswith("linux") else "egl"


def _make_gl_context(backend: str, width: int, height: int) -> Any:
    """An OpenGL context of MuJoCo's ``backend`` (imports ``mujoco.<backend>`` on demand)."""
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        from mujoco.glfw import GLContext
    return GLContext(width, height)


def _close_if_alive(renderer_ref: weakref.ref[OffscreenRenderer]) -> None:
    renderer = renderer_ref()
    if renderer is not None:
        renderer.close()


class OffscreenRenderer:
    """MuJoCo offscreen rendering into a uint8 image, with a GL context of its own.

    Unlike Gymnasium's ``MujocoRenderer``, which makes its context current only when one renderer
    holds several, this makes the context current before every frame, so several environments can
    render in one process without drawing into each other's buffers. Contexts are freed by
    ``close``, when the renderer is collected, or at interpreter exit (before EGL shuts down).
    """

    def __init__(self, model: Any, width: int, height: int) -> None:
        import mujoco

        self._mujoco = mujoco
        self.backend = gl_backend()
        try:
            self._gl = _make_gl_context(self.backend, width, height)
            self._gl.make_current()
            self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        except Exception as error:
            raise RuntimeError(
                f"MuJoCo offscreen rendering with the {self.backend!r} OpenGL back-end failed "
                f"({error!r}). On a headless Linux machine use EGL (Debian packages libegl1 and "
                "libegl-mesa0; MUJOCO_GL=egl) or OSMesa (libosmesa6; MUJOCO_GL=osmesa)."
            ) from error
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._scene = mujoco.MjvScene(model, maxgeom=1000)
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self._camera.lookat[:] = _CAMERA["lookat"]
        self._camera.distance = _CAMERA["distance"]
        self._camera.azimuth = _CAMERA["azimuth"]
        self._camera.elevation = _CAMERA["elevation"]
        self._viewport = mujoco.MjrRect(0, 0, width, height)
        self._pixels = np.empty((height, width, 3), dtype=np.uint8)
        self._exit_hook = functools.partial(_close_if_alive, weakref.ref(self))
        atexit.register(self._exit_hook)

    def render(self, model: Any, data: Any) -> np.ndarray:
        """The current frame, uint8 ``[height, width, 3]``, top row first."""
        mujoco = self._mujoco
        self._gl.make_current()
        mujoco.mjv_updateScene(
            model, data, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL, self._scene
        )
        mujoco.mjr_render(self._viewport, self._scene, self._context)
        mujoco.mjr_readPixels(self._pixels, None, self._viewport, self._context)
        return np.flipud(self._pixels).copy()  # OpenGL's rows run bottom-up

    def close(self) -> None:
        """Free the MuJoCo and OpenGL contexts; calling it again is harmless."""
        if getattr(self, "_gl", None) is None:
            return
        if hasattr(self, "_exit_hook"):
            atexit.unregister(self._exit_hook)
        try:
            self._gl.make_current()
            if hasattr(self, "_context"):
                self._context.free()
        finally:
            self._gl.free()
            self._gl = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # nothing useful to do while being collected
            self.close()
