"""Scene geometry and pixels against the specification, with an independent renderer."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
from hypothesis import given, settings as hsettings, strategies as st

from vqa_adapters.sort_of_clevr import SortOfClevrSettings, generate_split

COLORS = ["red", "green", "blue", "orange", "gray", "yellow"]
RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255),
       "orange": (255, 156, 0), "gray": (128, 128, 128), "yellow": (255, 255, 0)}


def reference_image(objects, size):
    """Whole-image rasteriser: pixel (r, c) has centre (c + .5, r + .5); later objects on top."""
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    cy, cx = np.mgrid[0:size, 0:size] + 0.5
    for o in objects:
        dx, dy, s = cx - o["x"], cy - o["y"], o["size"]
        if o["shape"] == "square":
            inside = (np.abs(dx) < s) & (np.abs(dy) < s)
        else:
            inside = dx ** 2 + dy ** 2 <= s ** 2
        img[inside] = RGB[o["color"]]
    return img


def check_scene(objects, size, object_size):
    assert [o["color"] for o in objects] == COLORS
    for o in objects:
        assert o["shape"] in ("square", "circle")
        assert o["size"] == object_size
        assert object_size <= o["x"] <= size - object_size
        assert object_size <= o["y"] <= size - object_size
    for a, b in itertools.combinations(objects, 2):
        assert math.hypot(a["x"] - b["x"], a["y"] - b["y"]) >= 2 * object_size


def test_stored_scenes_and_pixels(dataset):
    root, settings = dataset
    size = settings.size
    for split in ("train", "val", "test"):
        doc = json.loads((root / f"{split}.json").read_text())
        with np.load(root / f"{split}.npz") as z:
            images = z["images"]
        assert images.shape == (settings.count(split), size, size, 3)
        assert images.dtype == np.uint8
        for scene, img in zip(doc["scenes"], images):
            objects = scene["objects"]
            check_scene(objects, size, settings.object_size)
            for o in objects:
                assert tuple(img[o["y"], o["x"]]) == RGB[o["color"]]
            np.testing.assert_array_equal(img, reference_image(objects, size))


def test_background_is_white_and_objects_have_their_area():
    data = generate_split(SortOfClevrSettings(seed=2, train=50), "train")
    s = data.settings.object_size
    white = (data.images == 255).all(axis=-1)
    assert white.mean() > 0.8
    for scene, img in zip(data.scenes, data.images):
        for o in scene.objects:
            box = img[o.y - s:o.y + s, o.x - s:o.x + s]
            own = (box == RGB[o.color]).all(axis=-1).sum()
            if o.shape == "circle":  # a disc never loses its pixels to a neighbour's spacing
                assert abs(own - math.pi * s * s) <= 2 * math.pi * s
            else:
                assert own <= 4 * s * s


def test_centres_cover_the_whole_allowed_range():
    data = generate_split(SortOfClevrSettings(seed=4, train=500), "train")
    s, size = data.settings.object_size, data.settings.size
    xs = np.array([o.x for sc in data.scenes for o in sc.objects])
    ys = np.array([o.y for sc in data.scenes for o in sc.objects])
    assert xs.min() == s and xs.max() == size - s
    assert ys.min() == s and ys.max() == size - s
    shapes = np.array([o.shape == "circle" for sc in data.scenes for o in sc.objects])
    assert 0.45 < shapes.mean() < 0.55


@hsettings(max_examples=25, deadline=None)
@given(object_size=st.integers(1, 8), extra=st.integers(0, 40), seed=st.integers(0, 2**32))
def test_any_accepted_setting_places_valid_scenes(object_size, extra, seed):
    size = 6 * object_size + extra  # the smallest size the feasibility check accepts, and up
    settings = SortOfClevrSettings(seed=seed, train=5, val=0, test=0, size=size,
                                   object_size=object_size, questions_per_image=2)
    data = generate_split(settings, "train")
    for scene, img in zip(data.scenes, data.images):
        objects = [o.to_dict() for o in scene.objects]
        check_scene(objects, size, object_size)
        np.testing.assert_array_equal(img, reference_image(objects, size))
