"""The contact sheet: one PNG, a row per view, columns photo | render | depth | labels, captioned."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gsseg.report.views import ViewRender

COLUMNS = ("photo", "render", "depth", "labels")
BLANK_RGB = (40, 40, 40)  # the labels tile before any `gsseg segment`
HEADER_RGB = (24, 24, 24)
TEXT_RGB = (235, 235, 235)
GAP = 4  # pixels between tiles


def depth_range(views: list[ViewRender]) -> tuple[float, float]:
    """(near, far): the 2nd and 98th percentiles of the drawn depths (alpha > 0.5) of all ``views``,
    so every row shares one colour scale."""
    drawn = [v.depth[v.alpha > 0.5] for v in views]
    values = np.concatenate([d[np.isfinite(d) & (d > 0)] for d in drawn]) if drawn else np.zeros(0)
    if values.size == 0:
        return 0.0, 1.0
    near, far = np.percentile(values, [2.0, 98.0])
    return float(near), float(max(far, near + 1e-6))


def colorize_depth(depth: np.ndarray, alpha: np.ndarray, near: float, far: float) -> np.ndarray:
    """uint8 [H,W,3] depth [H,W] through OpenCV's turbo colour map, near red, far blue, black where
    nothing is drawn (alpha [H,W] < 0.5). The map is linear in inverse depth (disparity) between
    ``near`` and ``far``, so a distant background does not flatten the foreground into one colour."""
    import cv2

    with np.errstate(divide="ignore", invalid="ignore"):
        t = (1.0 / np.maximum(depth, near) - 1.0 / far) / (1.0 / near - 1.0 / far)
    t = np.nan_to_num(np.clip(t, 0.0, 1.0))
    index = (t * 255.0 + 0.5).astype(np.uint8)
    rgb = cv2.applyColorMap(index, cv2.COLORMAP_TURBO)[..., ::-1]  # OpenCV gives BGR
    return np.where((alpha >= 0.5)[..., None], rgb, 0).astype(np.uint8)


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] of segment ids [H,W] in the viewer's and the exporter's colours (0 = grey)."""
    from gsseg.viewer.display import segment_colors

    top = int(labels.max()) if labels.size else 0
    table = (segment_colors(np.arange(top + 1)) * 255.0 + 0.5).astype(np.uint8)
    return table[labels]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _caption(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font) -> None:
    """``text`` at ``xy`` on a dark box, readable over any image."""
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle((left - 3, top - 2, right + 3, bottom + 2), fill=(0, 0, 0))
    draw.text(xy, text, fill=TEXT_RGB, font=font)


def tile_size(width: int, height: int, tile_height: int = 240, min_width: int = 200) -> tuple[int, int]:
    """(tile width, tile height) for ``width x height`` views: ``tile_height`` tall, enlarged so a
    portrait photo's tile is still ``min_width`` wide (room for its captions)."""
    scale = max(tile_height / height, min_width / width)
    return max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)


def legend_lines(cut: str | None, segments: int | None, near: float, far: float) -> list[str]:
    """What the columns show, one line each, for the sheet's footer."""
    labels = (
        f"labels: segments of cut {cut} ({segments} segments; grey = unassigned)"
        if cut
        else "labels: no segments yet (run `gsseg segment RUN --auto`, then `gsseg render RUN` again)"
    )
    return [
        "render: the scene from the photo's camera, with its PSNR against the photo",
        f"depth: expected depth, red near to blue far (inverse depth, {near:.3g} .. {far:.3g} scene units)",
        labels,
    ]


def contact_sheet(
    views: list[ViewRender],
    cut: str | None,
    segments: int | None,
    tile_height: int = 240,
    near_far: tuple[float, float] | None = None,
) -> Image.Image:
    """The sheet for ``views`` (rows, in order): photo | render | depth | labels, the view name and
    PSNR on the tiles, a legend below. ``cut``: the cut the labels column shows (None: a blank
    column saying "no segments yet"); ``segments``: its segment count. Tiles are ``tile_size``
    (nearest neighbour for labels, so ids stay crisp). ``near_far``: the depth colour scale
    (default ``depth_range(views)``)."""
    h, w = views[0].photo.shape[:2]
    tw, th = tile_size(w, h, tile_height)
    font = _font(max(11, min(16, th // 14)))
    header = _font(16)
    head_h, line_h = 28, 20
    near, far = near_far if near_far is not None else depth_range(views)
    legend = legend_lines(cut, segments, near, far)
    width = 4 * tw + 5 * GAP
    body_h = head_h + len(views) * (th + GAP) + GAP
    # the legend wraps to the sheet's width
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped: list[str] = []
    for line in legend:
        words, current = line.split(" "), ""
        for word in words:
            trial = f"{current} {word}".strip()
            if current and probe.textlength(trial, font=font) > width - 2 * GAP - 8:
                wrapped.append(current)
                current = "  " + word
            else:
                current = trial
        wrapped.append(current)
    sheet = Image.new("RGB", (width, body_h + len(wrapped) * line_h + GAP), HEADER_RGB)
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(COLUMNS):
        draw.text((GAP + c * (tw + GAP) + 4, 6), title, fill=TEXT_RGB, font=header)
    for r, v in enumerate(views):
        tiles = [
            Image.fromarray(v.photo),
            Image.fromarray(v.render),
            Image.fromarray(colorize_depth(v.depth, v.alpha, near, far)),
            Image.fromarray(colorize_labels(v.labels)) if v.labels is not None else None,
        ]
        y = head_h + r * (th + GAP)
        for c, tile in enumerate(tiles):
            x = GAP + c * (tw + GAP)
            if tile is None:
                sheet.paste(Image.new("RGB", (tw, th), BLANK_RGB), (x, y))
                _caption(draw, (x + 6, y + th // 2 - 8), "no segments yet", font)
                continue
            resample = Image.Resampling.NEAREST if c == 3 else Image.Resampling.BILINEAR
            sheet.paste(tile.resize((tw, th), resample), (x, y))
        _caption(draw, (GAP + 5, y + 4), v.name, font)
        _caption(draw, (GAP + tw + GAP + 5, y + 4), f"{v.psnr:.2f} dB", font)
    for i, line in enumerate(wrapped):
        draw.text((GAP + 4, body_h + i * line_h), line, fill=TEXT_RGB, font=font)
    return sheet
