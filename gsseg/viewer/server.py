"""``gsseg view``: a viser app drawing the run's Gaussians as browser splats, with click selection.

The browser renders and sorts the splats itself (viser's WebGL splat renderer), so navigation
needs nothing from the server. A click sends a ray; the server picks the Gaussian under the
cursor (``pick.RayPicker``), scores every Gaussian against the click (``selection``), and
re-sends only the splat buffer with new colours (``display``), all in numpy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import math
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from gsseg.errors import GssegError
from gsseg.features.coverage import supervised_gaussians
from gsseg.viewer.display import DISPLAY_MODES, DisplayOptions, compose_rgba, segment_colors
from gsseg.viewer.origin import OriginPolicy, checking_origins
from gsseg.viewer.pick import PickResult, RayPicker
from gsseg.viewer.selection import ClickRecord, FeatureScorer, SegmentScorer, Selection, default_threshold
from gsseg.viewer.splats import DEFAULT_MAX_DISPLAY, SplatData, display_indices, drawable, with_rgba

NO_CUT = "(scene colours)"
CLICK_MODES = ("similar features", "segment of the shown cut")


@dataclass
class ViewerConfig:
    """host/port to listen on; view: dataset view (stem) the camera starts from (default: the first
    training view, when the run's dataset can be read); min_weight: ``T·α`` a Gaussian needs to be
    picked; export_dir: the folder "export selection" writes under (default ``RUN/exports``): the page
    names a sub-folder of it and can never write anywhere else; max_display: the browser draws at most
    this many Gaussians (0 = all; see ``splats.display_indices``), clicks still select among all;
    allow_origins: web origins besides the viewer's own page whose websockets are accepted (``origin.py``)."""

    host: str = "127.0.0.1"
    """Address to listen on; 127.0.0.1 keeps the viewer local, 0.0.0.0 opens it to the network."""
    port: int = 8080
    """Port to listen on (0: any free port)."""
    view: str | None = None
    """Dataset view (image stem) the camera starts from; not given: the first training view."""
    min_weight: float = 0.1
    """Blending weight T·alpha a Gaussian needs along the click ray to be picked."""
    export_dir: Path | None = None
    max_display: int = DEFAULT_MAX_DISPLAY
    allow_origins: tuple[str, ...] = ()


@dataclass
class StartCamera:
    """Initial browser camera (world coordinates): position, look_at, up, vertical fov (radians)."""

    position: np.ndarray
    look_at: np.ndarray
    up: np.ndarray
    fov: float


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch ops on one thread: selection updates are ~1e5-element vector ops, and an OpenMP
    pool on a busy machine makes them up to 100x slower (measured: 32 ms vs 0.3 ms)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_port_free(host: str, port: int) -> None:
    """GssegError with one sentence when ``host:port`` cannot be listened on (viser would
    otherwise silently move to the next port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise GssegError(
                    f"port {port} on {host} is already in use: stop the program using it or pick another with --port"
                ) from None
            raise GssegError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None


DEFAULT_EXPORT_NAME = "selection"
MAX_EXPORT_NAME = 200  # characters; each path component also fits a file system's 255 bytes


def export_folder(root: Path, name: str | None) -> Path:
    """``root / name`` for a folder name typed in the page; GssegError for an absolute path, a
    ``..`` component, or a path that leaves ``root`` through a symbolic link."""
    text = (name or "").strip() or DEFAULT_EXPORT_NAME
    parts = Path(text.replace("\\", "/")).parts
    if Path(text).is_absolute() or text.startswith(("/", "\\", "~")) or ".." in parts or ":" in text:
        raise GssegError(
            f"export folder {text!r}: give a folder name inside {root} (no absolute path, '~', "
            "':' or '..'); start `gsseg view` with --export-dir to export elsewhere"
        )
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise GssegError(f"export folder {text[:40]!r}: control characters (NUL, newline, ...) are not allowed")
    if len(text) > MAX_EXPORT_NAME or any(len(p.encode()) > 255 for p in parts):
        raise GssegError(f"export folder {text[:40]!r}...: longer than {MAX_EXPORT_NAME} characters")
    out = root / text
    if not out.resolve().is_relative_to(root.resolve()):
        raise GssegError(f"export folder {text!r}: leaves {root} through a symbolic link")
    if out.resolve() == root.resolve():
        raise GssegError(f"export folder {text!r}: is {root} itself; give a sub-folder name, e.g. selection")
    return out


def start_camera_from_dataset(run_root: Path, view: str | None, center: np.ndarray) -> StartCamera | None:
    """Camera of dataset view ``view`` (default: the first training view) looking through the
    scene centre's depth; None when the run records no readable dataset (``view`` unknown: GssegError)."""
    from gsseg.data import load_dataset
    from gsseg.run.run_dir import RunDir

    run = RunDir(run_root)
    if not run.has_config():
        if view is not None:
            raise GssegError(f"{run.config_path}: not found, so --view {view} cannot be resolved")
        return None
    cfg = run.read_config()
    try:
        ds = load_dataset(cfg.dataset, downscale=cfg.downscale, check_images=False)
    except GssegError:
        if view is not None:
            raise
        return None
    cams = ds.cameras("all")
    name = view if view is not None else (ds.names("train") or cams.names)[0]
    if name not in cams.names:
        shown = ", ".join(cams.names[:6]) + (", ..." if len(cams.names) > 6 else "")
        raise GssegError(f"--view {name}: no such view in {ds.root} (views: {shown})")
    i = cams.index_of(name)
    c2w = cams.camtoworlds[i].double().numpy()
    pos, forward = c2w[:3, 3], c2w[:3, 2]
    up_all = -cams.camtoworlds[:, :3, 1].double().numpy().mean(axis=0)
    up = up_all / max(np.linalg.norm(up_all), 1e-12) if np.linalg.norm(up_all) > 1e-6 else -c2w[:3, 1]
    depth = max(float(np.dot(center - pos, forward)), 1e-3)
    fy, h = float(cams.Ks[i, 1, 1]), float(cams.heights[i])
    return StartCamera(pos, pos + depth * forward, up, 2.0 * math.atan(0.5 * h / fy))


def drop_undrawable(scene, record):
    """(scene, record, kept): the Gaussians the browser can draw (``splats.drawable``), their
    features and coverage; ``kept`` [M] int64 rows of the file they came from, None when all are kept."""
    ok = drawable(scene)
    if ok.all():
        return scene, record, None
    kept = np.flatnonzero(ok)
    index = torch.from_numpy(kept)
    if record is not None:
        coverage = None if record.coverage is None else record.coverage[index]
        record = dataclasses.replace(record, features=record.features[index], coverage=coverage)
    return scene.subset(index), record, kept


def clip_planes(centers: np.ndarray, position: np.ndarray) -> tuple[float, float]:
    """(near, far) for the browser camera at ``position``: viser's 0.01 and 1000 unless the
    scene ``centers [N,3]`` need a farther far plane (twice the farthest centre) or a nearer
    near plane (1% of the nearest percentile of distances), e.g. scenes in millimetres or km."""
    dist = np.linalg.norm(np.asarray(centers, np.float64) - np.asarray(position, np.float64), axis=1)
    if dist.size == 0:
        return 0.01, 1000.0
    return min(0.01, 0.01 * max(float(np.percentile(dist, 1)), 1e-6)), max(1000.0, 2.0 * float(dist.max()))


def start_camera_from_points(means: np.ndarray) -> StartCamera:
    """A camera looking at the middle of ``means [N,3]`` from outside their bounding box (z up)."""
    lo, hi = np.percentile(means, [2, 98], axis=0) if len(means) else (np.zeros(3), np.ones(3))
    center = 0.5 * (lo + hi)
    radius = max(float(np.linalg.norm(hi - lo)) * 0.5, 1e-3)
    direction = np.array([1.0, -1.0, 0.8]) / np.linalg.norm([1.0, -1.0, 0.8])
    return StartCamera(center + 2.2 * radius * direction, center, np.array([0.0, 0.0, 1.0]), math.radians(50.0))


class ViewerApp:
    """State and handlers of one viewer; ``start()`` attaches them to a viser server.

    The handlers (``click``, ``set_threshold``, ``new_object``, ``undo``, ``clear``,
    ``show_cut``, ``set_mode``, ``export``) are plain methods so tests can call them directly.
    """

    def __init__(self, run_root: str | Path, cfg: ViewerConfig | None = None) -> None:
        from gsseg.features import load_run_scene
        from gsseg.segment.cuts import SegmentsDir

        self.run_root = Path(run_root)
        self.cfg = cfg or ViewerConfig()
        self.features_note = ""
        try:
            scene, record = load_run_scene(self.run_root, require_features=False, keep_invalid=True)
        except GssegError as e:
            if not (self.run_root / "scene.ply").is_file():
                raise
            from gsseg.gaussians.ply import read_ply

            scene, record = read_ply(self.run_root / "scene.ply", keep_invalid=True), None
            self.features_note = str(e)
        if len(scene) == 0:
            raise GssegError(f"{self.run_root / 'scene.ply'}: the scene has no Gaussians")
        self.n_file = len(scene)  # rows of scene.ply (and of its cuts' labels)
        scene, record, self.kept = drop_undrawable(scene, record)
        self.dropped = self.n_file - len(scene)
        if len(scene) == 0:
            raise GssegError(f"{self.run_root / 'scene.ply'}: every Gaussian has NaN/Inf values; nothing to draw")
        self.scene, self.record = scene, record
        self.n = len(scene)
        self.rgbs, self.opacities = SplatData.colors_of(scene)
        self.shown = display_indices(scene, self.cfg.max_display)
        self.display = SplatData.from_scene(scene if self.shown is None else scene.subset(torch.from_numpy(self.shown)))
        self.base_buffer = self.display.base_buffer()
        self.picker = RayPicker.from_scene(scene)
        kind = record.info.kind if record is not None else None
        self.scorer = (
            FeatureScorer(record.features, record.info.kind, supervised_gaussians(record.coverage, len(scene)))
            if record is not None
            else None
        )
        self.selection = Selection(self.n, threshold=default_threshold(kind))
        self.options = DisplayOptions()
        self.segments = SegmentsDir(self.run_root)
        self.cut_names, self.cut_note = self._list_cuts()
        self.cut: str | None = None
        self._cut_labels: dict[str, np.ndarray] = {}
        self._cut_rgbs: dict[str, np.ndarray] = {}
        self.click_mode = CLICK_MODES[0]
        self.negative_default = False
        self.last_pick: PickResult | None = None
        self.last_update_ms = 0.0
        self.message = ""
        self.lock = threading.RLock()
        self.server = None
        self._splat_handle = None
        self._gui: dict = {}

    # ------------------------------------------------------------------ data
    @property
    def has_features(self) -> bool:
        return self.scorer is not None

    def dropped_note(self) -> str:
        """One line on the Gaussians dropped at load ("" when none were)."""
        if not self.dropped:
            return ""
        return (
            f"{self.dropped} of {self.n_file} Gaussians in {self.run_root / 'scene.ply'} have NaN/Inf values "
            "(or are too large for the browser's half floats): dropped, not drawn, selected or exported"
        )

    def _list_cuts(self) -> tuple[list[str], str]:
        try:
            names = self.segments.names()
        except GssegError as e:
            return [], str(e)
        return names, "" if names else f"no segmentation yet (run `gsseg segment {self.run_root} --auto`)"

    def cut_labels(self, name: str) -> np.ndarray:
        """[N] int32 labels of a cut (read once), of the Gaussians kept at load."""
        if name not in self._cut_labels:
            labels = self.segments.labels(name, self.n_file)
            self._cut_labels[name] = labels if self.kept is None else labels[self.kept]
        return self._cut_labels[name]

    # ------------------------------------------------------------------ colours
    def base_rgbs(self) -> np.ndarray:
        """[N,3] colours before selection: the scene's, or the shown cut's segment colours."""
        if self.cut is None:
            return self.rgbs
        if self.cut not in self._cut_rgbs:
            self._cut_rgbs[self.cut] = segment_colors(self.cut_labels(self.cut))
        return self._cut_rgbs[self.cut]

    def current_rgba(self) -> np.ndarray:
        """[M] uint32 packed RGBA of the drawn Gaussians (``shown``; all N by default) as the browser
        should show them now."""
        rgbs, alpha, owner = self.base_rgbs(), self.opacities, self.selection.owner()
        anything = bool((owner >= 0).any())
        if self.shown is not None:
            rgbs, alpha, owner = rgbs[self.shown], alpha[self.shown], owner[self.shown]
        return compose_rgba(rgbs, alpha, owner, self.selection.colors(), self.options, anything)

    def visible(self) -> np.ndarray | None:
        """[N] bool of Gaussians drawn (isolate / hide), None when all are; hidden ones are not pickable."""
        if not self.selection.selected().any() or self.options.mode == "highlight":
            return None
        sel = self.selection.selected()
        return sel if self.options.mode == "isolate selected" else ~sel

    def refresh(self) -> float:
        """Recolour the browser splats (one buffer message) and the status line; returns the
        seconds spent from the selection state to the queued message."""
        t0 = time.perf_counter()
        rgba = self.current_rgba()
        if self._splat_handle is not None:
            self._splat_handle.buffer = with_rgba(self.base_buffer, rgba)
        dt = time.perf_counter() - t0
        self.last_update_ms = 1000.0 * dt
        self._update_status()
        return dt

    # ------------------------------------------------------------------ handlers
    def click(self, origin, direction, negative: bool | None = None) -> PickResult | None:
        """A click ray (world): pick the Gaussian under it and add a positive (or negative)
        click to the current object; updates the display. Returns the pick (None: background)."""
        with self.lock, one_torch_thread():
            t0 = time.perf_counter()
            negative = self.negative_default if negative is None else negative
            ids, ts, ws = self.picker.ray_weights(origin, direction, self.visible())
            pick = self.picker.choose(origin, direction, ids, ts, ws, self.cfg.min_weight)
            self.last_pick = pick
            if pick is None:
                self.message = "nothing under the cursor (background)"
                self._update_status()
                return None
            if not self.has_features:
                self.message = (
                    f"picked Gaussian {pick.index}; this run has no identity features, so nothing is selected"
                )
                self._update_status()
                return pick
            note = ""
            if self.click_mode == CLICK_MODES[1] and self.cut is not None:
                scores = SegmentScorer(self.cut_labels(self.cut)).scores(pick.index)
            else:
                if self.click_mode == CLICK_MODES[1]:
                    note = "no cut is shown, so the click selected by identity features"
                on_surface = self.picker.surface(pick, ids, ts)
                assert self.scorer is not None  # has_features was checked above
                scores = self.scorer.scores(ids[on_surface], ws[on_surface])
            try:
                self.selection.add_click(ClickRecord(pick.index, not negative, scores))
                self.message = note
            except GssegError as e:
                self.message = str(e)
            self.refresh()
            self.last_update_ms = 1000.0 * (time.perf_counter() - t0)
            self._update_status()
            return pick

    def set_threshold(self, value: float) -> None:
        with self.lock, one_torch_thread():
            self.selection.set_threshold(value)
            self.refresh()

    def new_object(self) -> None:
        with self.lock, one_torch_thread():
            self.message = (
                "" if self.selection.new_object() else "the current object is still empty: click on the scene"
            )
            self.refresh()

    def undo(self) -> None:
        with self.lock, one_torch_thread():
            self.message = "" if self.selection.undo() else "nothing to undo"
            self.refresh()

    def clear(self) -> None:
        with self.lock, one_torch_thread():
            self.message = "" if self.selection.clear() else "nothing selected"
            self.refresh()

    def set_mode(self, mode: str) -> None:
        with self.lock, one_torch_thread():
            self.options = DisplayOptions(mode=mode, tint=self.options.tint, dim=self.options.dim)
            self.refresh()

    def show_cut(self, name: str | None) -> None:
        """Colour the scene by the segments of cut ``name`` (None: scene colours)."""
        with self.lock, one_torch_thread():
            if name is not None and name not in self.cut_names:
                raise GssegError(f"no cut named {name!r} in {self.segments.root}")
            try:
                if name is not None:
                    self.cut_labels(name)
                self.cut = name
                self.message = ""
            except GssegError as e:
                self.cut, self.message = None, str(e)
            self.refresh()

    @property
    def export_root(self) -> Path:
        """The folder every export of the page goes under: ``--export-dir``, else ``RUN/exports``."""
        return Path(self.cfg.export_dir) if self.cfg.export_dir is not None else self.run_root / "exports"

    def export(self, name: str | None = None) -> Path:
        """Write the selected objects like ``gsseg export`` does (one PLY per object, the scene
        without them, labels sidecar, segments.json) into ``export_root / name`` (default
        "selection"); GssegError when nothing is selected or ``name`` would leave ``export_root``."""
        from gsseg.export import export_segments

        with self.lock, one_torch_thread():
            out = export_folder(self.export_root, name)
            labels = (self.selection.owner() + 1).astype(np.int32)
            if not (labels > 0).any():
                raise GssegError("nothing is selected: click on an object first")
            clicks = [
                [{"gaussian": c.gaussian, "positive": c.positive} for c in o.clicks] for o in self.selection.objects
            ]
            source = {
                "run": str(self.run_root),
                "dropped_at_load": self.dropped,  # Gaussians with NaN/Inf values: not drawn, not exported
                "viewer": {
                    "threshold": self.selection.threshold,
                    "clicks": clicks,
                    "cut": self.cut,
                    "click_mode": self.click_mode,
                },
            }
            manifest = export_segments(self.scene, labels, out, cut="viewer-selection", source=source)
            self.message = (
                f"exported {manifest['selected_gaussians']} Gaussians in {len(manifest['selected'])} object(s) to {out}"
            )
            self._update_status()
            return out

    # ------------------------------------------------------------------ status
    def status_text(self) -> str:
        """The status line (markdown): selected count, objects, threshold, last pick, timing."""
        lines = []
        if not self.has_features:
            lines.append(
                f"**View only**: {self.features_note}"
                if self.features_note
                else "**View only**: this run has no identity features. Train them with "
                "`gsseg train DATA --out RUN --stage features` to select objects."
            )
        counts = self.selection.counts()
        total = int(sum(counts))
        lines.append(f"**Selected: {total} Gaussians** of {self.n} in {sum(1 for c in counts if c)} object(s)")
        extra = [
            f"threshold {self.selection.threshold:.2f}",
            f"current object {self.selection.current + 1}" if self.selection.current >= 0 else "no object yet",
        ]
        if self.last_pick is not None:
            extra.append(f"picked Gaussian {self.last_pick.index}")
        extra.append(f"update {self.last_update_ms:.0f} ms")
        lines.append(" · ".join(extra))
        if self.cut is not None:
            labels = self.cut_labels(self.cut)
            lines.append(f"cut **{self.cut}**: {len(np.unique(labels[labels > 0]))} segments")
        if self.message:
            lines.append(f"_{self.message}_")
        return "\n\n".join(lines)

    def _update_status(self) -> None:
        handle = self._gui.get("status")
        if handle is not None:
            handle.content = self.status_text()

    # ------------------------------------------------------------------ viser
    def start(self):
        """Start the viser server (GssegError when the port is taken) and build scene and GUI."""
        import viser

        center = np.median(self.display.centers, axis=0).astype(np.float64)
        cam = start_camera_from_dataset(self.run_root, self.cfg.view, center) or start_camera_from_points(
            self.display.centers
        )
        check_port_free(self.cfg.host, self.cfg.port)
        policy = OriginPolicy(self.cfg.host, self.cfg.allow_origins)
        # viser's own banner is hidden (`gsseg view` prints the URL); foreign web pages are refused
        with contextlib.redirect_stdout(io.StringIO()), checking_origins(policy):
            server = viser.ViserServer(host=self.cfg.host, port=self.cfg.port, label="gsseg", verbose=False)
        if self.cfg.port != 0 and server.get_port() != self.cfg.port:
            self.server = server
            self.stop()
            raise GssegError(f"port {self.cfg.port} on {self.cfg.host} is already in use: pick another with --port")
        self.server = server
        server.scene.set_up_direction(tuple(float(v) for v in cam.up))
        server.initial_camera.position = tuple(float(v) for v in cam.position)
        server.initial_camera.look_at = tuple(float(v) for v in cam.look_at)
        server.initial_camera.up = tuple(float(v) for v in cam.up)
        server.initial_camera.fov = float(cam.fov)
        near, far = clip_planes(self.display.centers, cam.position)
        server.initial_camera.near, server.initial_camera.far = near, far
        self._splat_handle = server.scene.add_gaussian_splats(
            "/scene",
            centers=self.display.centers,
            covariances=self.display.covariances,
            rgbs=self.display.rgbs,
            opacities=self.display.opacities[:, None],
        )
        self._build_gui(server)

        @server.scene.on_click()
        def _(event) -> None:
            self.click(event.ray_origin, event.ray_direction)

        @server.scene.on_click(modifier="shift")
        def _(event) -> None:
            self.click(event.ray_origin, event.ray_direction, negative=True)

        self.refresh()
        return server

    def _build_gui(self, server) -> None:
        gui = server.gui
        shown = (
            f" ({len(self.shown)} drawn, the most visible; clicks select among all)" if self.shown is not None else ""
        )
        gui.add_markdown(
            f"**gsseg** · `{self.run_root.name}` · {self.n} Gaussians{shown}"
            + (f" · {self.dropped} with NaN/Inf values dropped" if self.dropped else "")
            + (f" · {self.record.info.objective} {self.record.info.kind}" if self.record else "")
        )
        self._gui["status"] = gui.add_markdown(self.status_text())
        with gui.add_folder("Selection"):
            mode = gui.add_dropdown(
                "Click adds",
                ("positive", "negative"),
                initial_value="positive",
                disabled=not self.has_features,
                hint="What a plain click adds to the current object; shift+click is always negative.",
            )
            source = gui.add_dropdown(
                "Click selects",
                CLICK_MODES,
                initial_value=CLICK_MODES[0],
                disabled=not self.has_features,
                hint="Gaussians with similar identity features, or the clicked segment of the cut shown below.",
            )
            thr = gui.add_slider(
                "Threshold",
                min=0.0,
                max=1.0,
                step=0.01,
                initial_value=self.selection.threshold,
                disabled=not self.has_features,
                hint="Score a Gaussian needs to be selected: lower = coarser (bigger) objects, higher = finer.",
            )
            new = gui.add_button(
                "New object", disabled=not self.has_features, hint="Next clicks select another object."
            )
            undo = gui.add_button("Undo", disabled=not self.has_features)
            clear = gui.add_button("Clear", disabled=not self.has_features)
            show = gui.add_dropdown("Show", DISPLAY_MODES, initial_value=self.options.mode)
        with gui.add_folder("Segments"):
            cut = gui.add_dropdown(
                "Colour by cut", (NO_CUT, *self.cut_names), initial_value=NO_CUT, disabled=not self.cut_names
            )
            if self.cut_note:
                gui.add_markdown(f"_{self.cut_note}_")
        with gui.add_folder("Export"):
            gui.add_markdown(f"_exports go under `{self.export_root}`_")
            out = gui.add_text(
                "Output folder",
                DEFAULT_EXPORT_NAME,
                hint=f"A folder name inside {self.export_root}; other places are refused.",
            )
            export = gui.add_button(
                "Export selection",
                disabled=not self.has_features,
                hint="One PLY per selected object, the scene without them, labels and segments.json.",
            )

        mode.on_update(lambda _: setattr(self, "negative_default", mode.value == "negative"))
        source.on_update(lambda _: setattr(self, "click_mode", source.value))
        thr.on_update(lambda _: self.set_threshold(float(thr.value)))
        new.on_click(lambda _: self.new_object())
        undo.on_click(lambda _: self.undo())
        clear.on_click(lambda _: self.clear())
        show.on_update(lambda _: self.set_mode(show.value))
        cut.on_update(lambda _: self.show_cut(None if cut.value == NO_CUT else cut.value))

        def _export(_) -> None:
            try:
                self.export(out.value)
            except GssegError as e:
                self.message = str(e)
                self._update_status()

        export.on_click(_export)
        self._gui.update(threshold=thr)

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.redirect_stdout(io.StringIO()):
                self.server.stop()
            self.server = None


def serve(run_root: str | Path, cfg: ViewerConfig, ready=None) -> None:
    """Run the viewer until interrupted; ``ready(app)`` is called once it listens."""
    app = ViewerApp(run_root, cfg)
    app.start()
    if ready is not None:
        ready(app)
    try:
        while True:
            time.sleep(3600)
    finally:
        app.stop()
