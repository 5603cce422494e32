"""Loading a SAM model from a user checkpoint (official ViT-H/L/B, or a small gsseg-built one).

Official checkpoints are plain state dicts; their architecture comes from
``segment_anything.sam_model_registry`` by type (given, or inferred from the file name or the
image-encoder width). A checkpoint written by :func:`save_sam_checkpoint` carries its own
architecture under ``gsseg_sam_config`` (used for tiny randomly initialised test models).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import torch

from gsseg.errors import GssegError, file_error
from gsseg.masks.sources.torchvision_compat import ensure_torchvision

MODEL_TYPES = ("vit_h", "vit_l", "vit_b")
_WIDTH_TO_TYPE = {1280: "vit_h", 1024: "vit_l", 768: "vit_b"}
_EMBED_KEY = "image_encoder.patch_embed.proj.weight"
CHECKPOINT_HELP = "download one from https://github.com/facebookresearch/segment-anything#model-checkpoints"


@dataclass
class SamArchitecture:
    """SAM architecture hyper-parameters (defaults: ViT-B at 1024 px)."""

    image_size: int = 1024
    patch_size: int = 16
    encoder_embed_dim: int = 768
    encoder_depth: int = 12
    encoder_num_heads: int = 12
    encoder_global_attn_indexes: list[int] = field(default_factory=lambda: [2, 5, 8, 11])
    window_size: int = 14
    mlp_ratio: float = 4.0
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SamArchitecture":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown SAM architecture keys {sorted(unknown)}")
        return cls(**data)


def build_sam(arch: SamArchitecture) -> torch.nn.Module:
    """A randomly initialised ``segment_anything.modeling.Sam`` of the given architecture."""
    ensure_torchvision()
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = arch.image_size // arch.patch_size
    model = Sam(
        image_encoder=ImageEncoderViT(
            img_size=arch.image_size,
            patch_size=arch.patch_size,
            embed_dim=arch.encoder_embed_dim,
            depth=arch.encoder_depth,
            num_heads=arch.encoder_num_heads,
            mlp_ratio=arch.mlp_ratio,
            out_chans=arch.prompt_embed_dim,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=arch.window_size,
            global_attn_indexes=tuple(arch.encoder_global_attn_indexes),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=arch.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(arch.image_size, arch.image_size),
            mask_in_chans=arch.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=arch.decoder_depth,
                embedding_dim=arch.prompt_embed_dim,
                mlp_dim=arch.decoder_mlp_dim,
                num_heads=arch.decoder_num_heads,
            ),
            transformer_dim=arch.prompt_embed_dim,
            iou_head_depth=arch.iou_head_depth,
            iou_head_hidden_dim=arch.iou_head_hidden_dim,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return model.eval()


def save_sam_checkpoint(path: str | Path, model: torch.nn.Module, arch: SamArchitecture) -> None:
    """Write ``{"gsseg_sam_config": arch, "model": state_dict}`` so :func:`load_sam` rebuilds it."""
    from gsseg.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"gsseg_sam_config": asdict(arch), "model": model.state_dict()}, tmp)


def infer_model_type(path: Path, state_dict: dict[str, torch.Tensor]) -> str:
    """vit_h / vit_l / vit_b from the file name, else from the image-encoder width."""
    match = re.search(r"vit_?([hlb])", path.name.lower())
    if match:
        return f"vit_{match.group(1)}"
    weight = state_dict.get(_EMBED_KEY)
    if weight is not None and int(weight.shape[0]) in _WIDTH_TO_TYPE:
        return _WIDTH_TO_TYPE[int(weight.shape[0])]
    raise file_error(
        path, f"cannot tell the SAM model type from the name or weights; pass --model-type ({'/'.join(MODEL_TYPES)})"
    )


def load_sam(checkpoint: str | Path | None, model_type: str | None = None, device: str = "cpu") -> torch.nn.Module:
    """A SAM model on ``device`` with the checkpoint's weights; ``GssegError`` for user mistakes."""
    if checkpoint is None:
        raise GssegError(f"the sam source needs --checkpoint PATH to a SAM checkpoint ({CHECKPOINT_HELP})")
    path = Path(checkpoint)
    if not path.is_file():
        raise file_error(path, f"SAM checkpoint not found ({CHECKPOINT_HELP})")
    if model_type is not None and model_type not in MODEL_TYPES:
        raise GssegError(f"unknown SAM model type {model_type!r}; use one of {', '.join(MODEL_TYPES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GssegError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load raises many types for a corrupt file
        raise file_error(
            path, f"not a readable PyTorch checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})"
        ) from e
    if not isinstance(data, dict):
        raise file_error(path, "not a SAM checkpoint (expected a state dict)")
    if "gsseg_sam_config" in data:
        try:
            model = build_sam(SamArchitecture.from_dict(dict(data["gsseg_sam_config"])))
        except (TypeError, ValueError) as e:
            raise file_error(path, f"bad gsseg_sam_config ({e})") from e
        state_dict = data.get("model", {})
    else:
        state_dict = data.get("model", data) if isinstance(data.get("model"), dict) else data
        kind = model_type or infer_model_type(path, state_dict)
        ensure_torchvision()
        from segment_anything import sam_model_registry

        model = sam_model_registry[kind]()
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        raise file_error(
            path, f"weights do not match the SAM architecture ({str(e).splitlines()[0]}); check --model-type"
        ) from e
    return model.to(device).eval()
