"""Cut of logit features by their most probable channel (object fields, identity clustering)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def argmax_labels(logits: Tensor, min_prob: float = 0.0) -> np.ndarray:
    """int32 [N]: 1 + the argmax channel of ``logits [N,K]``; 0 where its softmax probability
    is below ``min_prob``."""
    with torch.no_grad():
        probs = torch.softmax(logits.float(), dim=-1)
        best, idx = probs.max(dim=-1)
        labels = torch.where(best >= min_prob, idx + 1, torch.zeros_like(idx))
    return labels.cpu().numpy().astype(np.int32)
