"""Make the tiny model: run with the vLLM environment's Python packages on ``sys.path``
(transformers, tokenizers, torch), not the project's virtualenv.

``python -m paitient_images.tinymodel_make OUT CORPUS_LIST [RECIPE]``: a byte-level BPE trained
on the text files named in CORPUS_LIST, a Llama-architecture config and random weights (fixed
seed), and a chat template. Nothing is downloaded. RECIPE is ``tiny`` (the default: the model
every test and the demo serve) or ``bench`` (the same made bigger, more layers and a longer
context, for ``make bench-routing``, where the tiny model's prefill is too cheap to measure).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final


@dataclass(frozen=True)
class Recipe:
    """The model's shape (a Llama); the tokenizer is the same for every recipe."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    max_positions: int


# The recipes: changing any of these changes the cache key (tinymodel.py hashes this file).
VOCAB_SIZE: Final = 4096
SEED: Final = 0
RECIPES: Final = {
    "tiny": Recipe(hidden=256, layers=2, heads=4, kv_heads=2, intermediate=688, max_positions=2048),
    # About 52 M parameters: a 2,000-token prompt's prefill takes seconds on one CPU core, as a
    # long clinical prompt's does on a GPU with a real model, so a cache hit shows.
    "bench": Recipe(
        hidden=768, layers=8, heads=12, kv_heads=4, intermediate=2048, max_positions=4096
    ),
}
MAX_POSITIONS: Final = RECIPES["tiny"].max_positions
# The builder imports this module for the recipe's constants; only a run inside the vLLM
# environment imports the libraries, so they are imported in the functions.
_IMPORTED_LATE: Final = ("tokenizers", "transformers", "torch")
BOS, EOS, START, END, EOT = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)
CHAT_TEMPLATE: Final = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{{ message['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def make_tokenizer(corpus: list[str], out: Path, max_positions: int) -> dict[str, int]:
    from tokenizers import (  # noqa: PLC0415 - see _IMPORTED_LATE
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS, EOS, START, END, EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOT,
        pad_token=EOS,
        chat_template=CHAT_TEMPLATE,
        model_max_length=max_positions,
    )
    fast.save_pretrained(str(out))
    return {t: tokenizer.token_to_id(t) for t in (BOS, EOS, EOT)}


def make_model(ids: dict[str, int], vocab: int, out: Path, recipe: Recipe) -> None:
    import torch  # noqa: PLC0415 - see _IMPORTED_LATE
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM  # noqa: PLC0415

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=recipe.hidden,
        intermediate_size=recipe.intermediate,
        num_hidden_layers=recipe.layers,
        num_attention_heads=recipe.heads,
        num_key_value_heads=recipe.kv_heads,
        max_position_embeddings=recipe.max_positions,
        tie_word_embeddings=True,
        bos_token_id=ids[BOS],
        eos_token_id=[ids[EOT], ids[EOS]],
        pad_token_id=ids[EOS],
        torch_dtype="bfloat16",
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config = GenerationConfig(
        bos_token_id=ids[BOS], eos_token_id=[ids[EOT], ids[EOS]], pad_token_id=ids[EOS]
    )
    model.save_pretrained(str(out), safe_serialization=True)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"parameters": params, "vocab": vocab}))


def main(argv: list[str]) -> int:
    out, corpus_list = Path(argv[0]), Path(argv[1])
    recipe = RECIPES[argv[2] if len(argv) > 2 else "tiny"]
    corpus = corpus_list.read_text(encoding="utf-8").splitlines()
    out.mkdir(parents=True, exist_ok=True)
    ids = make_tokenizer(corpus, out, recipe.max_positions)
    vocab = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    make_model(ids, len(vocab), out, recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
