"""Container images of every component, built without Docker (``make images``).

Other code finds what was built here::

    from paitient_images import image, images, tiny_model
    image("paitient-gateway").archive     # path of the oci-archive
    image("paitient-gateway").reference   # ghcr.io/paitient/paitient-gateway:0.1.0
    tiny_model().path                     # the tiny model's directory
"""

from __future__ import annotations

from paitient_images.cache import (
    ImageArtifact,
    NotBuilt,
    TinyModel,
    cache_dir,
    image,
    images,
    tiny_model,
)

__all__ = [
    "ImageArtifact",
    "NotBuilt",
    "TinyModel",
    "cache_dir",
    "image",
    "images",
    "tiny_model",
]
