"""SAM source: torchvision stand-in, checkpoint loading, the real generator on a tiny SAM."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from gsseg.errors import GssegError
from gsseg.masks import MaskStore, ViewMasks
from gsseg.masks.sources import torchvision_compat as tvc
from gsseg.masks.sources.sam import SamSettings, SamSource, clean_small_regions, downscale_to, remove_small_regions
from gsseg.masks.sources.sam_model import SamArchitecture, build_sam, infer_model_type, load_sam, save_sam_checkpoint
from gsseg.masks.sources.sam_prompts import SamPrompter, prompt_masks

TINY = SamArchitecture(
    image_size=64,
    patch_size=16,
    encoder_embed_dim=32,
    encoder_depth=2,
    encoder_num_heads=2,
    encoder_global_attn_indexes=[1],
    window_size=2,
    prompt_embed_dim=32,
    mask_in_chans=4,
    decoder_mlp_dim=64,
    decoder_num_heads=2,
    iou_head_hidden_dim=32,
)


@pytest.fixture(scope="module", autouse=True)
def restore_torchvision():
    """Leave ``sys.modules`` as it was: the stand-in must not leak into other test modules."""
    before = {k: v for k, v in sys.modules.items() if k == "torchvision" or k.startswith("torchvision.")}
    yield
    for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
        del sys.modules[k]
    sys.modules.update(before)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_sam(TINY)
    path = tmp_path_factory.mktemp("sam") / "tiny_sam.pt"
    save_sam_checkpoint(path, model, TINY)
    return path


def sample_image(h: int = 48, w: int = 64) -> np.ndarray:
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:] = (40, 60, 80)
    img[8:30, 10:40] = (220, 50, 50)
    img[30:44, 36:60] = (50, 220, 90)
    return img


# torchvision stand-in --------------------------------------------------------------------


def brute_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, thr: float) -> list[int]:
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        ok = True
        for j in kept:
            if classes[i] != classes[j]:
                continue
            x1, y1 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            x2, y2 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            if inter / (area(boxes[i]) + area(boxes[j]) - inter) > thr:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(5))
def test_batched_nms_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 60
    xy = rng.uniform(-20, 80, size=(n, 2))
    wh = rng.uniform(2, 40, size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.random(n).astype(np.float32)
    classes = rng.integers(0, 3, n)
    for thr in (0.3, 0.7):
        got = tvc.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), thr)
        assert got.dtype == torch.int64
        assert got.tolist() == brute_nms(boxes.astype(np.float64), scores, classes, thr)


def test_box_area_and_empty_inputs():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 1.5, 5.0]])
    assert tvc.box_area(boxes).tolist() == [6.0, 2.0]
    empty = torch.zeros((0, 4))
    assert tvc.batched_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).numel() == 0


def test_resize_and_to_pil_image():
    img = sample_image()
    pil = tvc.to_pil_image(img)
    assert isinstance(pil, Image.Image) and np.array_equal(np.asarray(pil), img)
    out = np.asarray(tvc.resize(pil, [24, 32]))
    assert np.array_equal(out, np.asarray(Image.fromarray(img).resize((32, 24), Image.BILINEAR)))
    assert tvc.resize(pil, 24).size == (32, 24)  # an int sets the shorter side
    chw = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    assert np.array_equal(np.asarray(tvc.to_pil_image(chw)), (chw.permute(1, 2, 0) * 255).to(torch.uint8).numpy())
    small = tvc.resize(torch.from_numpy(img).permute(2, 0, 1).contiguous(), [24, 32])
    assert small.shape == (3, 24, 32) and small.dtype == torch.uint8


def test_stand_in_only_when_torchvision_is_missing(monkeypatch):
    real = types.ModuleType("torchvision")
    ops, boxes = types.ModuleType("torchvision.ops"), types.ModuleType("torchvision.ops.boxes")
    transforms, functional = (
        types.ModuleType("torchvision.transforms"),
        types.ModuleType("torchvision.transforms.functional"),
    )
    for name, mod in [
        ("torchvision", real),
        ("torchvision.ops", ops),
        ("torchvision.ops.boxes", boxes),
        ("torchvision.transforms", transforms),
        ("torchvision.transforms.functional", functional),
    ]:
        monkeypatch.setitem(sys.modules, name, mod)
    assert tvc.ensure_torchvision() is None
    assert sys.modules["torchvision"] is real and not tvc.is_stand_in()
    monkeypatch.setitem(sys.modules, "torchvision.ops.boxes", None)  # makes that import fail
    note = tvc.ensure_torchvision()
    assert note is not None and "pip install torchvision" in note
    assert tvc.is_stand_in()
    from torchvision.ops.boxes import batched_nms  # noqa: PLC0415 - the stand-in now answers

    assert batched_nms is tvc.batched_nms


# checkpoints ------------------------------------------------------------------------------


def test_missing_and_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(GssegError, match="nope.pth: SAM checkpoint not found"):
        load_sam(tmp_path / "nope.pth")
    with pytest.raises(GssegError, match="--checkpoint"):
        load_sam(None)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not torch")
    with pytest.raises(GssegError, match="junk.pth: not a readable PyTorch checkpoint"):
        load_sam(junk)
    with pytest.raises(GssegError, match="vit_x"):
        load_sam(junk, model_type="vit_x")


def test_model_type_inference(tmp_path):
    width = "image_encoder.patch_embed.proj.weight"
    assert infer_model_type(tmp_path / "sam_vit_b_01ec64.pth", {}) == "vit_b"
    assert infer_model_type(tmp_path / "model.pth", {width: torch.zeros(1024, 3, 16, 16)}) == "vit_l"
    assert infer_model_type(tmp_path / "model.pth", {width: torch.zeros(1280, 3, 16, 16)}) == "vit_h"
    with pytest.raises(GssegError, match="--model-type"):
        infer_model_type(tmp_path / "model.pth", {width: torch.zeros(64, 3, 16, 16)})


def test_mismatched_weights_name_the_file(tmp_path):
    path = tmp_path / "sam_vit_b_wrong.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(8, 3, 16, 16)}, path)
    with pytest.raises(GssegError, match="sam_vit_b_wrong.pth: weights do not match"):
        load_sam(path)


def test_tiny_checkpoint_reloads_identically(tiny_checkpoint):
    a, b = load_sam(tiny_checkpoint), load_sam(tiny_checkpoint)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert a.image_encoder.img_size == TINY.image_size


# the sam source ---------------------------------------------------------------------------


def test_small_region_clean_up():
    mask = np.zeros((30, 30), dtype=bool)
    mask[2:20, 2:20] = True
    mask[10, 10] = False  # 1-px hole
    mask[25:27, 25:27] = True  # 4-px island
    out, changed = remove_small_regions(mask, 10, "holes")
    assert changed and out[10, 10] and out[25:27, 25:27].all()
    out, changed = remove_small_regions(out, 10, "islands")
    assert changed and not out[25:27, 25:27].any() and out[2:20, 2:20].all()
    tiny = np.zeros((10, 10), dtype=bool)
    tiny[1, 1] = True
    tiny[5:7, 5:7] = True
    out, changed = remove_small_regions(tiny, 100, "islands")  # all small: the largest stays
    assert changed and out.sum() == 4 and out[5:7, 5:7].all()
    same, changed = remove_small_regions(out, 2, "islands")
    assert not changed and np.array_equal(same, out)
    masks = np.stack([mask, mask, np.roll(mask, 5, axis=0)])
    kept, scores = clean_small_regions(masks, np.array([0.9, 0.8, 0.7], dtype=np.float32), 10, 0.7)
    assert len(kept) == 2 and scores.tolist() == pytest.approx([0.9, 0.7])


def test_downscale_to_limits_the_long_side():
    img = sample_image(48, 64)
    assert downscale_to(img, 100) is img
    assert downscale_to(img, 32).shape == (24, 32, 3)


def test_tiny_sam_generator_produces_a_store(tiny_checkpoint, tmp_path):
    settings = SamSettings(
        checkpoint=tiny_checkpoint,
        points_per_side=6,
        pred_iou_thresh=-10.0,
        stability_score_thresh=0.0,
        box_nms_thresh=0.95,
        min_mask_region_area=8,
        max_size=48,
    )
    source = SamSource(settings)
    img = sample_image(48, 64)
    masks, scores = source.masks_for_image(downscale_to(img, settings.max_size))
    assert masks.ndim == 3 and masks.shape[1:] == (36, 48) and len(masks) >= 1
    vm = ViewMasks.from_masks(masks, scores, "sam", image_size=(48, 64), info=source.settings())
    store = MaskStore(tmp_path)
    store.save("v", vm)
    back = store.load("v")
    assert np.array_equal(back.masks(), masks) and back.image_size == (48, 64)
    assert back.source == "sam" and back.info["points_per_side"] == 6
    assert back.info["small_regions"] in ("gsseg+scipy", "segment_anything+opencv")


def test_tiny_sam_point_prompts(tiny_checkpoint):
    model = load_sam(tiny_checkpoint)
    img = sample_image(48, 64)
    prompter = SamPrompter(model, max_size=32)  # encoded downscaled, answered at full size
    prompter.set_image(img)
    result = prompter.predict(np.array([[20.5, 15.5], [50.0, 40.0]]), np.array([1, 0]))
    assert result.mask.shape == (48, 64) and result.mask.dtype == bool
    assert result.candidates == 3 and np.isfinite(result.score)
    results = prompt_masks(
        model, img, [(np.array([[20.5, 15.5]]), np.array([1])), (np.array([[50.0, 40.0]]), np.array([1]))]
    )
    assert len(results) == 2 and all(r.mask.shape == (48, 64) for r in results)
    with pytest.raises(ValueError):
        prompter.predict(np.zeros((2, 2)), np.array([1]))
