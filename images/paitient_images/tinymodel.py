"""The tiny model, made at build time and cached by its recipe, and the tree of its image.

The model is made with the vLLM environment's own transformers and tokenizers (pinned by its
lock), so no extra packages are installed. Its tokenizer is trained on the licence and metadata
texts of those pinned packages: local, and the same on every machine.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Final

from paitient_images import tinymodel_make
from paitient_images.recipes import SCRIPTS_DIR, SITE_PACKAGES
from paitient_images.steps import run

MODEL_NAME: Final = "tiny-llama"  # the directory name, in the cache and under a volume
IMAGE_MODEL_DIR: Final = "/model"  # where the tiny-model image holds the files
MAX_MODEL_LEN: Final = tinymodel_make.MAX_POSITIONS
COPIER: Final = Path(__file__).with_name("copy_model.py")


def corpus(vllm_tree: Path) -> list[Path]:
    """Licence and metadata texts of the pinned vLLM environment, sorted."""
    site = vllm_tree / SITE_PACKAGES
    found = [
        p
        for p in site.glob("*.dist-info/**/*")
        if p.is_file()
        and (p.name == "METADATA" or p.name.upper().startswith(("LICENSE", "COPYING")))
    ]
    return sorted(found)


def make_model(vllm_tree: Path, out: Path, logs: Path, recipe: str = "tiny") -> None:
    """Write the model's files into ``out`` (made under a temporary name, then renamed);
    ``recipe`` names one of ``tinymodel_make.RECIPES``."""
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    texts = partial.parent / f"{out.name}.corpus"
    texts.write_text("\n".join(str(p) for p in corpus(vllm_tree)) + "\n", encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(vllm_tree / SITE_PACKAGES), str(Path(__file__).parents[1])]
        ),
        "PYTHONNOUSERSITE": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "true",
    }
    try:
        run(
            [sys.executable, "-s", "-m", "paitient_images.tinymodel_make", partial, texts, recipe],
            env=env,
            log_file=logs / f"{recipe}-model.log",
        )
    finally:
        texts.unlink(missing_ok=True)
    for path in partial.iterdir():
        path.chmod(0o644)  # safetensors writes 0600: the images' non-root user must read it
    partial.rename(out)


def build_model_image_tree(model: Path, tree: Path) -> None:
    """The tiny-model image's own layer: the files under /model and the copier script."""
    dest = tree / IMAGE_MODEL_DIR.lstrip("/")
    shutil.copytree(model, dest)
    scripts = tree / SCRIPTS_DIR
    scripts.mkdir(parents=True)
    script = scripts / "copy-model"
    script.write_bytes(b"#!/usr/bin/python3\n" + COPIER.read_bytes())
    script.chmod(0o755)
