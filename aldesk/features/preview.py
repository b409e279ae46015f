"""Turning previews into the grey working images every extractor starts from.

Previews are (h, w) or (h, w, 3) uint8, longest side <= 128, aspect kept, sizes differing per image.
Resizing is a pair of small cached matrix products (an anti-aliased triangle filter, as Pillow's
bilinear resampling), so it costs microseconds, needs no per-call set-up and handles upscaling of tiny
images (28 x 28) and downscaling alike. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# ITU-R BT.601 luma weights in 1/256 units, so grey conversion stays in integers.
_LUMA = np.array([77, 150, 29], dtype=np.uint32)


def check_images(images) -> list[np.ndarray]:
    """Validate a batch of previews; return it as a list (no copies)."""
    if isinstance(images, np.ndarray) and images.ndim in (3, 4) and images.dtype == np.uint8:
        images = list(images)  # a stacked batch of equal-sized previews
    images = list(images)
    for i, im in enumerate(images):
        if not isinstance(im, np.ndarray) or im.dtype != np.uint8:
            raise ValueError(f"images[{i}] is {type(im).__name__} "
                             f"{getattr(im, 'dtype', '')}, must be a uint8 numpy array")
        if not (im.ndim == 2 or (im.ndim == 3 and im.shape[2] in (1, 3))):
            raise ValueError(f"images[{i}].shape == {im.shape}, must be (h, w) or (h, w, 3)")
        if im.shape[0] == 0 or im.shape[1] == 0:
            raise ValueError(f"images[{i}].shape == {im.shape}, must not be empty")
    return images


def to_grey(image: np.ndarray) -> np.ndarray:
    """(h, w) or (h, w, 3) uint8 -> (h, w) uint8 luma."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return ((image @ _LUMA + 128) >> 8).astype(np.uint8)


def centre_square(image: np.ndarray) -> np.ndarray:
    """The central square of an image (a view, no copy): the longer side is cropped.

    Cropping rather than padding: padding draws an artificial edge whose place depends on the
    aspect ratio, and HOG/LBP respond to it more strongly than to anatomy; the crop keeps the
    centred anatomy at full resolution (as MedMNIST and ImageNet-style networks do).
    """
    return centre_crop(image, 1, 1)


def centre_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The largest central region with the aspect ratio height : width (a view, no copy)."""
    h, w = image.shape[:2]
    if h * width > w * height:  # too tall
        new_h = max(1, round(w * height / width))
        top = (h - new_h) // 2
        return image[top:top + new_h]
    if h * width < w * height:  # too wide
        new_w = max(1, round(h * width / height))
        left = (w - new_w) // 2
        return image[:, left:left + new_w]
    return image


@lru_cache(maxsize=512)
def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 weights of a triangle filter widened when shrinking (anti-aliased)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    x = (np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / support
    w = np.clip(1.0 - np.abs(x), 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    w = w.astype(np.float32)
    w.setflags(write=False)
    return w


def resize(grey: np.ndarray, height: int, width: int | None = None) -> np.ndarray:
    """(h, w) array -> (height, width) float32 in the same units (uint8 input stays 0..255)."""
    width = height if width is None else width
    h, w = grey.shape
    out = grey.astype(np.float32, copy=False)
    if h != height:
        out = resize_matrix(h, height) @ out
    if w != width:
        out = out @ resize_matrix(w, width).T
    return out


def working_image(image: np.ndarray, size: int) -> np.ndarray:
    """A preview -> its central square as (size, size) float32 grey in [0, 1]."""
    sq = centre_square(to_grey(image))
    return resize(sq, size) * np.float32(1.0 / 255.0)
