"""NeRF backend: a radiance field (tri-plane density / colour + identity-feature head) rendered by
volume rendering with occupancy-grid ray marching, in pure PyTorch (CPU and CUDA alike).

Files: ``config.py`` (settings), ``encoding.py`` (multi-resolution tri-plane), ``model.py`` (the
field and its scene normalisation), ``rays.py`` (camera rays), ``occupancy.py`` (occupancy grid),
``volume.py`` (volume-rendering weights), ``render.py`` (ray marching + compositing),
``rgb.py`` (the RGB stage), ``io.py`` (``RUN/field.pt``).
"""
