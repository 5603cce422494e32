"""What a stage derives from its step number alone, so a resumed run replays what it would have
done: the training view of a step, the random generator of a step; and the warning when a stage
stopped far short of its step schedule. Shared by the Gaussian trainers (``gsseg.train``) and the
radiance-field trainers (``gsseg.field``)."""

from __future__ import annotations

import torch


def view_order(n_views: int, step: int, seed: int) -> int:
    """Index of the training view used at ``step``: a fresh permutation every epoch (stateless, resumable)."""
    epoch, pos = divmod(step, n_views)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return int(torch.randperm(n_views, generator=g)[pos])


def step_generator(seed: int, step: int) -> torch.Generator:
    """A generator that depends only on (seed, step), so a resumed run samples what it would have."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7_919 + 12_345) % (2**63))


SHORT_SCHEDULE_FRACTION = 0.5  # a run that stops before this share of its steps gets a warning


def schedule_warning(steps: int, iters: int, time_limit_s: float) -> str | None:
    """One line when the stage stopped far short of its schedule (fewer than
    SHORT_SCHEDULE_FRACTION of ``iters`` steps, i.e. the time limit ran out first), else None."""
    if iters <= 0 or steps >= SHORT_SCHEDULE_FRACTION * iters:
        return None
    why = f"its time limit of {time_limit_s:g} s ran out" if time_limit_s > 0 else "it was stopped"
    return (
        f"the rgb stage stopped after {steps} of its {iters} steps ({100 * steps / iters:.0f}%) because {why}: "
        "the scene is undertrained (raise --time-limit, or lower the resolution with --downscale)"
    )
