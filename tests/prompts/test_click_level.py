"""A click means the object under it, neither its part nor its group (issue 31), unless the
prompt's ``level`` asks for the part or the group: propagated prompt masks on built-in scenes
whose parts, objects and groups nest (a dining table with its chairs, books on a shelf, fruit
in a bowl)."""

from __future__ import annotations

import numpy as np
import pytest

from gsseg.data import load_dataset
from gsseg.errors import GssegError
from gsseg.masks.click_object import level_mask, mask_heights
from gsseg.masks.store import ViewMasks
from gsseg.prompts.lifting import SurfaceProbe
from gsseg.prompts.propagation import propagate
from gsseg.prompts.spec import Click, PromptOptions, PromptSpec, PropagationSettings
from tests.helpers.objective_fixtures import surface_gaussians


def nested_masks() -> ViewMasks:
    """A 12x16 view: group G = object A ∪ object B; A = parts A1 ∪ A2; B has parts B1, B2."""
    h, w = 12, 16
    a1 = np.zeros((h, w), bool)
    a1[2:6, 1:4] = True
    a2 = np.zeros((h, w), bool)
    a2[6:10, 1:4] = True
    b1 = np.zeros((h, w), bool)
    b1[2:10, 4:7] = True
    b2 = np.zeros((h, w), bool)
    b2[2:10, 7:9] = True
    masks = [a1, a2, a1 | a2, b1, b2, b1 | b2, a1 | a2 | b1 | b2]
    return ViewMasks.from_masks(np.stack(masks))


def test_mask_heights_count_the_levels_below():
    vm = nested_masks()
    assert mask_heights(vm.inclusion_tree()).tolist() == [0, 0, 1, 0, 0, 1, 2]


def test_level_mask_picks_part_object_group_of_touching_objects():
    """A and B touch (one flat surface): connectivity alone calls the group one object; the
    nesting says the group holds objects that hold parts."""
    vm = nested_masks()
    depth = np.full((12, 16), 2.0)
    K = np.array([[20.0, 0, 8], [0, 20.0, 6], [0, 0, 1]])
    click = np.array([[2, 3]])  # (x, y) in A1
    holding = np.flatnonzero(vm.membership[:, vm.patch_index[3, 2]])
    assert sorted(holding.tolist()) == [0, 2, 6]
    assert level_mask(vm, holding, depth, K, click) == 2  # A, not A1, not the group
    assert level_mask(vm, holding, depth, K, click, "part") == 0
    assert level_mask(vm, holding, depth, K, click, "group") == 6
    with pytest.raises(ValueError):
        level_mask(vm, holding, depth, K, click, "scene")


def test_prompt_level_option_is_checked():
    assert PromptOptions(clicks=["v:1,2"], level="group").propagation().level == "group"
    with pytest.raises(GssegError, match="part, object, group"):
        PromptOptions(clicks=["v:1,2"], level="whole")


@pytest.fixture(scope="module", params=["livingroom", "kitchen"])
def nested_scene(request, tmp_path_factory):
    """A built-in scene whose groups hold several objects, Gaussians on its surfaces, and every
    view's masks at all three ground-truth levels (nested, no noise: what is tested is which
    level a click takes)."""
    from gsseg.synth import make_scene

    out = tmp_path_factory.mktemp("data") / request.param
    make_scene(out, scene=request.param, seed=0, width=96, height=72, views=8, test_views=1, show_progress=False)
    ds = load_dataset(out)
    views = ds.names("train")
    sg = surface_gaussians(ds, views, size_factor=0.4)
    probe = SurfaceProbe(*sg.geometry, ds.cameras("train"), max_tables=len(views))
    masks = {}
    for v in views:
        maps = np.stack([np.asarray(ds.gt(v, lv), np.int64) for lv in ds.gt_levels])
        masks[v] = ViewMasks.from_label_maps(maps)[0].deduplicated(0.9)
    return request.param, ds, probe, masks


TARGETS = {"livingroom": ["dining_table", "chair_1"], "kitchen": ["apple", "book_2", "bowl"]}
LEVEL_CHECK = {"livingroom": "dining_table", "kitchen": "book_2"}  # also clicked with --level part / group


def one_click(ds, name: str) -> tuple[Click, dict[str, int]]:
    """A click on object ``name`` (its interior pixel in the training view where it is largest)
    and the ground-truth id under it per level."""
    import json
    from pathlib import Path

    from gsseg.eval.metrics import interior_pixel

    objects = json.loads((Path(ds.root) / "hierarchy.json").read_text())["objects"]
    oid = next(int(k) for k, o in objects.items() if o["name"] == name)
    view = max(ds.names("train"), key=lambda v: int((ds.gt(v, "object") == oid).sum()))
    y, x = interior_pixel(ds.gt(view, "object") == oid)
    return Click(view, x + 0.5, y + 0.5), {lv: int(ds.gt(view, lv)[y, x]) for lv in ds.gt_levels}


def propagated_iou(ds, results, level: str, gt_id: int) -> float:
    """IoU of the propagated masks with ground-truth segment ``gt_id`` of ``level``, pooled over
    the views that got labels."""
    inter = union = 0
    for r in results:
        if r.labels is None:
            continue
        pred, gt = r.labels == 1, ds.gt(r.view, level) == gt_id
        inter += int((pred & gt).sum())
        union += int((pred | gt).sum())
    return inter / max(union, 1)


@pytest.mark.slow
def test_a_click_selects_the_object_not_its_group(nested_scene):
    """One click on a table with chairs, a book standing on a shelf, an apple and a bowl with the
    fruit in it: the propagated masks are the object (IoU >= 0.85), well below it for the group
    (the objects of these groups touch, so the surface connectivity alone takes the group);
    level "part" / "group" select the part and the group instead (group IoU 0.73 for the book:
    the bookcase's back is seen by few of the 8 views)."""
    scene, ds, probe, masks = nested_scene

    def run(click: Click, level: str) -> list:
        settings = PropagationSettings(level=level)
        return propagate(
            PromptSpec(clicks=[click]), probe, ds.names("train"), ds.scene_scale, settings, masks_of=masks.get
        )[2]

    for name in TARGETS[scene]:
        click, ids = one_click(ds, name)
        results = run(click, "object")
        got = {lv: propagated_iou(ds, results, lv, ids[lv]) for lv in ("part", "object", "group")}
        assert got["object"] >= 0.85, (name, got)
        assert got["group"] <= got["object"] - 0.15, (name, got)
    click, ids = one_click(ds, LEVEL_CHECK[scene])
    group = propagated_iou(ds, run(click, "group"), "group", ids["group"])
    part = propagated_iou(ds, run(click, "part"), "part", ids["part"])
    assert group >= 0.7 and part >= 0.7, (group, part)
