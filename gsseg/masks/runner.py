"""Run a mask source over the views of a dataset into its mask store.

Views that already have a mask file are skipped unless ``force``; each view is written
atomically as soon as it is done, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsseg.errors import GssegError
from gsseg.masks.sources.base import MaskSource, NoInputForView, View
from gsseg.masks.sources.sam_settings import SamSettings
from gsseg.masks.store import MaskStore
from gsseg.utils.progress import NullProgress, progress_bar

SPLITS = ("all", "train", "test")


@dataclass
class SourceOptions:
    """Options of every source; each source reads only its own."""

    sam: SamSettings = field(default_factory=SamSettings)
    region_counts: list[int] = field(default_factory=lambda: [4, 8, 16, 32, 64, 128])
    """Watershed: region counts of the hierarchy cuts."""
    watershed_attribute: str = "volume"
    """Watershed: hierarchy ordering: area, volume or dynamics."""
    min_area_fraction: float = 0.002
    """Watershed: drop regions smaller than this fraction of the image (0 <= F < 1)."""
    noise: str = "medium"
    """Simulated: easy, medium or hard."""
    seed: int = 0
    """Simulated: random seed (with the view name, fixes the masks)."""
    run: Path | None = None
    """Geometry: a run of DATA whose RGB stage is done (RUN/scene.ply) gives depth and normals."""


def make_source(name: str, options: SourceOptions | None = None) -> MaskSource:
    """The source called ``name`` ("sam", "geometry", "watershed", "labels", "simulated")."""
    options = options or SourceOptions()
    if name == "sam":
        from gsseg.masks.sources.sam import SamSource

        return SamSource(options.sam)
    if name == "watershed":
        from gsseg.masks.sources.watershed import ATTRIBUTES, WatershedSettings, WatershedSource

        if options.watershed_attribute not in ATTRIBUTES:
            raise GssegError(
                f"unknown watershed attribute {options.watershed_attribute!r}; use one of {', '.join(ATTRIBUTES)}"
            )
        if not options.region_counts or min(options.region_counts) < 1:
            raise GssegError(f"--levels needs positive region counts, got {options.region_counts}")
        return WatershedSource(
            WatershedSettings(
                region_counts=list(options.region_counts),
                attribute=options.watershed_attribute,
                min_area_fraction=options.min_area_fraction,
            )
        )
    if name == "geometry":
        from gsseg.masks.sources.geometry import GeometrySettings, GeometrySource

        if options.run is None:
            raise GssegError(
                "--source geometry needs --run RUN: a run of this dataset whose RGB stage is done "
                "(`gsseg train` with no masks runs it and these masks by itself)"
            )
        counts = list(options.region_counts)
        if not counts or min(counts) < 1:
            raise GssegError(f"--levels needs positive region counts, got {counts}")
        return GeometrySource.from_run(
            options.run, GeometrySettings(region_counts=counts, min_area_fraction=options.min_area_fraction)
        )
    if name == "labels":
        from gsseg.masks.sources.labels import LabelSource

        return LabelSource()
    if name == "simulated":
        from gsseg.masks.sources.simulated import NOISE_LEVELS, SimulatedSource

        if options.noise not in NOISE_LEVELS:
            raise GssegError(f"unknown noise level {options.noise!r}; use one of {', '.join(NOISE_LEVELS)}")
        return SimulatedSource(options.noise, options.seed)
    raise GssegError(f"unknown mask source {name!r}; use one of sam, geometry, watershed, labels, simulated")


@dataclass
class RunReport:
    """What a run did: views written, already present, and without input (with the reason)."""

    written: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    no_input: dict[str, str] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)  # the source found no mask: nothing written, old file kept
    masks_written: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "written": len(self.written),
            "existing": len(self.existing),
            "no_input": len(self.no_input),
            "empty": len(self.empty),
            "masks_written": self.masks_written,
        }


def run_source(
    dataset: Any, source: MaskSource, split: str = "all", force: bool = False, show_progress: bool = True
) -> RunReport:
    """Write ``dataset.masks_dir/<stem>.npz`` for every view of ``split`` with ``source``.

    Raises ``GssegError`` when no view at all had input for the source, or when another process
    is writing the same mask store (``masks/.lock``).
    """
    if split not in SPLITS:
        raise GssegError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    from gsseg.utils.atomic import remove_stale_temporaries
    from gsseg.utils.run_lock import folder_lock

    store = MaskStore(dataset.masks_dir)
    names = dataset.names(split)
    with folder_lock(store.root, f"masks --source {source.name}", what="mask store"):
        remove_stale_temporaries(store.root)
        return _run(dataset, source, store, names, force, show_progress)


def _run(
    dataset: Any, source: MaskSource, store: MaskStore, names: list[str], force: bool, show_progress: bool
) -> RunReport:
    """The body of :func:`run_source`, run while holding the mask store's lock."""
    report = RunReport()
    todo: list[str] = []
    for name in names:
        (report.existing if store.has(name) and not force else todo).append(name)
    with progress_bar() if show_progress else NullProgress() as progress:
        task = progress.add_task(f"masks ({source.name})", total=len(todo), info="", unit="view")
        for name in todo:
            try:
                view_masks = source(View(dataset, name))
            except NoInputForView as e:
                report.no_input[name] = str(e)
                info = f"{name}: skipped"
            else:
                if view_masks.n_masks == 0:  # never replace a mask file by an empty one
                    report.empty.append(name)
                    info = f"{name}: no mask"
                else:
                    store.save(name, view_masks)
                    report.written.append(name)
                    report.masks_written += view_masks.n_masks
                    info = f"{name}: {view_masks.n_masks} masks"
            progress.update(task, advance=1, info=info)
    if todo and not report.written and len(report.no_input) == len(todo):
        first = next(iter(report.no_input.items()))
        raise GssegError(
            f"{dataset.root}: the {source.name} source found no input for any view (e.g. {first[0]}: {first[1]})"
        )
    if todo and not report.written and report.empty:
        raise GssegError(
            f"{dataset.root}: the {source.name} source found no mask in any of {len(report.empty)} views "
            f"(e.g. {report.empty[0]}); nothing was written{_empty_hint(source)}"
        )
    return report


def _empty_hint(source: MaskSource) -> str:
    """Why a source may find no mask at all, for the error line."""
    if source.name == "labels":
        return ": the label images hold only 0 (background)"
    if source.name == "watershed":
        return ": --min-area (a fraction of the image, e.g. 0.002) drops every region"
    return ""
