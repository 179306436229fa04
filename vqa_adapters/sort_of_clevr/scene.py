"""Scene graphs of Sort-of-CLEVR images: placing the six objects and drawing them with numpy.

A scene is a value (frozen dataclasses): one object per colour, in the order of
:data:`~.vocab.COLORS`, each with its shape, integer centre and size. Geometry convention: pixel
``image[r, c]`` covers the unit square ``[c, c+1) x [r, r+1)``; an object centred at the integer
point ``(x, y)`` covers ``[x-s, x+s) x [y-s, y+s)`` (square) or the disc of radius ``s`` around
``(x, y)`` (circle), so ``image[y, x]`` always lies inside it. ``x`` grows rightwards, ``y``
downwards. This module does not ask or answer questions and does not touch files.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hlmrf.errors import SettingsError

from .vocab import COLOR_RGB, COLORS, SHAPES

__all__ = ["SceneObject", "Scene", "place_objects", "render", "MAX_RESTARTS"]

#: Placements that jam (no free position left for the next object) restart the scene; after this
#: many restarts the settings are declared too tight. The analytic check in the settings makes
#: this a backstop that is never reached in practice.
MAX_RESTARTS = 1000


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene."""

    color: str
    shape: str
    x: int
    y: int
    size: int

    def to_dict(self) -> dict:
        return {"color": self.color, "shape": self.shape, "x": self.x, "y": self.y, "size": self.size}


@dataclass(frozen=True)
class Scene:
    """The scene graph of one image: ``objects[i]`` has colour ``COLORS[i]``."""

    image_size: int
    objects: tuple[SceneObject, ...]

    def centers(self) -> np.ndarray:
        """Object centres as a float array ``(n, 2)`` of ``(x, y)``."""
        return np.array([(o.x, o.y) for o in self.objects], dtype=np.float64)


@lru_cache(maxsize=None)
def _exclusion(d: int) -> np.ndarray:
    """Offsets closer than ``d`` to the origin, as a boolean stamp of side ``2d - 1``."""
    r = np.arange(-(d - 1), d)
    return (r[:, None] ** 2 + r[None, :] ** 2) < d * d


def place_objects(rng: np.random.Generator, size: int, object_size: int) -> Scene:
    """Draw one scene: centres uniform on the free integer positions, shapes uniform.

    Each object's centre is uniform over the positions in ``[s, size - s]^2`` at distance
    ``>= 2s`` from the objects already placed, which is the distribution of the usual
    draw-and-reject generator, but without its unbounded loop. Shapes are drawn after positions.
    """
    s, d = object_size, 2 * object_size
    m = size - 2 * s + 1  # positions per axis
    stamp = _exclusion(d)
    n = len(COLORS)
    for _ in range(MAX_RESTARTS):
        free = np.ones((m, m), dtype=bool)
        picks: list[tuple[int, int]] = []
        for _ in range(n):
            candidates = np.flatnonzero(free)
            if candidates.size == 0:
                break
            row, col = divmod(int(candidates[rng.integers(candidates.size)]), m)
            picks.append((col + s, row + s))
            # Clear every position closer than d to the new centre (stamp clipped to the grid).
            r0, r1 = max(0, row - d + 1), min(m, row + d)
            c0, c1 = max(0, col - d + 1), min(m, col + d)
            free[r0:r1, c0:c1] &= ~stamp[r0 - row + d - 1:r1 - row + d - 1,
                                         c0 - col + d - 1:c1 - col + d - 1]
        if len(picks) == n:
            break
    else:
        raise SettingsError(
            f"could not place {n} objects of size {s} in a {size}x{size} image after "
            f"{MAX_RESTARTS} attempts; use a larger size or a smaller object_size"
        )
    shapes = rng.integers(len(SHAPES), size=n)
    objects = tuple(
        SceneObject(COLORS[i], SHAPES[int(shapes[i])], x, y, s) for i, (x, y) in enumerate(picks)
    )
    return Scene(size, objects)


@lru_cache(maxsize=None)
def _stamps(s: int) -> dict[str, np.ndarray]:
    c = np.arange(2 * s) + 0.5 - s  # pixel-centre offsets from the object centre
    return {
        "square": np.ones((2 * s, 2 * s), dtype=bool),
        "circle": (c[:, None] ** 2 + c[None, :] ** 2) <= s * s,
    }


def render(scene: Scene, out: np.ndarray | None = None) -> np.ndarray:
    """Draw ``scene`` on a white ``(size, size, 3)`` uint8 image (into ``out`` when given)."""
    size = scene.image_size
    if out is None:
        out = np.empty((size, size, 3), dtype=np.uint8)
    out.fill(255)
    _draw(scene, out)
    return out


def _draw(scene: Scene, out: np.ndarray) -> None:
    """Draw the objects of ``scene`` onto ``out`` (already white)."""
    for obj in scene.objects:
        s = obj.size
        patch = out[obj.y - s:obj.y + s, obj.x - s:obj.x + s]
        patch[_stamps(s)[obj.shape]] = COLOR_RGB[obj.color]
