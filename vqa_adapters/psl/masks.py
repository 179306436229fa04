"""Heatmap masks from chosen objects: Gaussian blobs, rendered vectorised at any resolution.

A chosen object becomes the blob ``weight * exp(-d^2 / (2 sigma^2))`` around its pixel centre,
``d`` measured in the source image's pixels and ``sigma = 0.6 radius`` (so the blob is
``~0.25`` at the object's radius); a question's mask is the union of its blobs (their
maximum). Masks are sampled at pixel centres of a ``width x height`` grid laid over the source
image, so one call renders 480x320 (native CLEVR), 128x128 (RN) or a 14x14 grid (SAN). Blobs are
separable (``exp(-(dx^2 + dy^2) / 2 sigma^2) = g(dx) g(dy)``), so a batch costs two small
exponentials per object and one float32 outer product per object slot, maximised in place; uint8
output is scaled by 255 in the weights and rounded once, in cache-sized chunks. Storage: :func:`quantize` maps [0, 1] to uint8 (``round(255 m)``; read back as
``q / 255``, error <= 0.002), which keeps 10,000 masks at 128x128 to 164 MB raw and far less
deflated. Previews need pillow, imported inside :func:`overlay_image` (PNG bytes); only
:func:`overlay_png` writes a file, and saving arrays is the caller's (atomic) business.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hlmrf.errors import DataError, SettingsError

#: Gaussian sigma per unit of object radius.
SIGMA_PER_RADIUS = 0.6

__all__ = ["SIGMA_PER_RADIUS", "MaskSpec", "parse_size", "render_masks", "quantize", "dequantize", "overlay_image",
           "overlay_png", "mask_bytes"]


@dataclass(frozen=True)
class MaskSpec:
    """The blobs of one mask: centres ``(k, 2)`` (x, y) and radii ``(k,)`` in source pixels,
    weights ``(k,)`` in [0, 1], over a source image of ``image_size`` = (width, height)."""

    centres: np.ndarray
    radii: np.ndarray
    weights: np.ndarray
    image_size: tuple[int, int]


def parse_size(text: str) -> tuple[int, int]:
    """``"128x128"`` -> (128, 128) as (width, height); ``"14"`` -> (14, 14)."""
    parts = str(text).lower().split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        dims = []
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) < 1:
        raise SettingsError(f"mask size {text!r} is not WIDTHxHEIGHT with positive integers (e.g. 128x128)")
    return dims[0], dims[1]


def mask_bytes(n: int, size: tuple[int, int], dtype: str = "float32", chunk: int = 32) -> int:
    """Memory :func:`render_masks` needs for ``n`` masks of ``size``: the output array plus its
    two float32 chunk buffers (the compressed file written afterwards is smaller than the output)."""
    W, H = size
    item = 1 if dtype == "uint8" else 4
    return n * W * H * item + 2 * min(chunk, max(n, 1)) * W * H * 4


def render_masks(specs: Sequence[MaskSpec], size: tuple[int, int], dtype: str = "float32",
                 chunk: int = 32) -> np.ndarray:
    """Render one mask per spec: ``(N, height, width)``, float32 in [0, 1] or, with
    ``dtype="uint8"``, already quantised (:func:`quantize`) chunk by chunk.

    ``size`` is (width, height) of the output grid; each spec's source image is mapped onto it.
    ``chunk`` questions render together: 32 keeps the float32 scratch (32 x 128 x 128) in cache,
    about twice as fast as 128 at 128x128.
    """
    if dtype not in ("float32", "uint8"):
        raise SettingsError(f"dtype must be 'float32' or 'uint8', got {dtype!r}")
    W, H = size
    out = np.zeros((len(specs), H, W), np.dtype(dtype))
    for _ in render_masks_into(out, specs, size, chunk):
        pass
    return out


RENDER_WINDOW = 512
"""Questions per window of :func:`render_masks_into`: each window is done before the next starts,
so a consumer (the ``masks.npz`` deflater) can work on it meanwhile."""


def render_masks_into(out: np.ndarray, specs: Sequence[MaskSpec], size: tuple[int, int],
                      chunk: int = 32, window: int = RENDER_WINDOW):
    """Render the masks into ``out`` (zeros, ``(N, height, width)``, float32 or uint8) window by
    window of ``window`` questions in order, yielding each window's ``(start, stop)`` once done.

    Each mask depends on its spec alone, so the windows change no value: :func:`render_masks`
    is this run to the end.
    """
    W, H = size
    N = len(specs)
    quantised = out.dtype == np.uint8
    counts = np.fromiter((len(p.radii) for p in specs), np.int64, N)
    if not counts.any():
        for s in range(0, N, window):
            yield s, min(s + window, N)
        return
    # Every blob in one flat table (question by question); question i's blobs are
    # first[i]:first[i] + counts[i].
    has = [p for p in specs if len(p.radii)]
    cen = np.concatenate([np.asarray(p.centres, np.float32).reshape(-1, 2) for p in has])
    sig = np.maximum(np.concatenate([np.asarray(p.radii, np.float32).reshape(-1) for p in has])
                     * np.float32(SIGMA_PER_RADIUS), np.float32(1e-3))
    wt = np.concatenate([np.asarray(p.weights, np.float32).reshape(-1) for p in has])
    if quantised:
        wt = wt * np.float32(255.0)  # quantise as we go: max(255 b_j) = 255 max(b_j), no extra pass
    img = np.asarray([p.image_size for p in specs], np.float32).reshape(N, 2)
    sx, sy = img[:, 0] / W, img[:, 1] / H
    first = np.r_[0, np.cumsum(counts)[:-1]]
    gx0 = np.arange(W, dtype=np.float32) + np.float32(0.5)  # pixel centres of the output grid
    gy0 = np.arange(H, dtype=np.float32) + np.float32(0.5)
    buf = np.empty((min(chunk, N), H, W), np.float32)
    tmp = np.empty_like(buf)
    for w0 in range(0, N, window):
        w1 = min(w0 + window, N)
        # Within the window, questions with as many blobs render together, so no chunk pays for
        # another's blob count; questions without blobs keep their zeros.
        order = w0 + np.argsort(counts[w0:w1], kind="stable")
        for s in range(int(np.searchsorted(counts[order], 1)), len(order), chunk):
            idx = order[s:s + chunk]
            cnt = counts[idx]
            view, t = buf[:len(idx)], tmp[:len(idx)]
            gx = gx0[None, :] * sx[idx, None]  # in source coordinates, per question
            gy = gy0[None, :] * sy[idx, None]
            for j in range(int(cnt.max())):
                # Blob slot j of each question (a question with fewer blobs repeats its last at
                # weight 0, which leaves the maximum as it is).
                b = first[idx] + np.minimum(j, cnt - 1)
                ex = np.exp(np.float32(-0.5) * ((gx - cen[b, 0, None]) / sig[b, None]) ** 2)  # (n, W)
                ey = (np.exp(np.float32(-0.5) * ((gy - cen[b, 1, None]) / sig[b, None]) ** 2)
                      * np.where(cnt > j, wt[b], np.float32(0.0))[:, None])  # (n, H)
                if j == 0:
                    np.multiply(ey[:, :, None], ex[:, None, :], out=view)
                else:
                    np.multiply(ey[:, :, None], ex[:, None, :], out=t)
                    np.maximum(view, t, out=view)
            if quantised:
                np.rint(view, out=view)
            out[idx] = view
        yield w0, w1


def quantize(masks: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 ``round(255 m)`` (the stored form)."""
    return np.rint(np.clip(masks, 0.0, 1.0) * 255.0).astype(np.uint8)


def dequantize(q: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]."""
    return q.astype(np.float32) / 255.0


def overlay_image(image_path: str | os.PathLike, mask: np.ndarray, max_width: int = 480) -> bytes:
    """The image with the mask laid over it (dimmed outside, tinted inside), as PNG bytes.

    ``mask`` is ``(h, w)`` in [0, 1] at any resolution (resized to the image). An image pillow
    cannot read (truncated, not an image, too large) is a :class:`~hlmrf.errors.DataError` naming
    it; a system error (permission denied) stays an ``OSError``.
    """
    from PIL import Image  # pillow is needed for previews only

    try:
        with Image.open(image_path) as src:
            img = src.convert("RGB")
    except OSError as exc:
        if exc.errno is not None:  # the file system's error (permission, I/O), not the bytes'
            raise
        raise DataError(f"cannot read the image: {exc}", os.fspath(image_path)) from None
    except (SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read the image: {exc}", os.fspath(image_path)) from None
    if img.width > max_width:
        img = img.resize((max_width, max(1, round(img.height * max_width / img.width))), Image.BILINEAR)
    m = Image.fromarray(np.rint(np.clip(mask, 0, 1) * 255).astype(np.uint8)).resize(img.size, Image.BILINEAR)
    a = np.asarray(img, np.float32) / 255.0
    k = (np.asarray(m, np.float32) / 255.0)[..., None]
    tint = np.array([1.0, 0.25, 0.1], np.float32)
    blend = a * (0.4 + 0.6 * k) * (1 - 0.3 * k) + 0.3 * k * tint
    buf = io.BytesIO()
    Image.fromarray(np.rint(np.clip(blend, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def overlay_png(image_path: str | os.PathLike, mask: np.ndarray, out_path: str | os.PathLike,
                max_width: int = 480) -> None:
    """Write :func:`overlay_image` to ``out_path`` atomically (:func:`hlmrf.infra.atomic_write`)."""
    from hlmrf.infra import atomic_write

    atomic_write(out_path, overlay_image(image_path, mask, max_width))
