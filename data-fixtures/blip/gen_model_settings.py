#!/usr/bin/env python3
"""Golden captions for what a BLIP checkpoint stores beside its weights, from transformers.

1. Decoding settings in `text_config` (transformers' `generate` takes its defaults from
   there: num_beams, max_length, min_length, no_repeat_ngram_size, repetition_penalty,
   length_penalty), with and without a prompt, and a `generation_config.json` that
   BLIP's `generate` does not read. Each variant is tiny-caption/ with one config.json
   change, loaded with `from_pretrained` and run with a plain `generate(**inputs)`.
2. The tokenizer layout of salesforce/BLIP's `init_tokenizer` (bert-base-uncased with
   `[DEC]` added as bos_token = 30522 and `[ENC]` as an additional special token =
   30523, 30,524 tokens): written to dec-in-tokenizer/ by `save_pretrained`, used with
   tiny-caption's weights (text_config.bos_token_id 30522, vocab_size 30524).

Writes model-settings.json (ids per image and decoded text for every variant) and
dec-in-tokenizer/. crates/medcap-model/tests/model_settings.rs compares.

Versions: those of gen.py (transformers 4.57.1, torch 2.11.0, tokenizers 0.22.2).
Rerun from the repository root after `cargo xtask parity` has installed them into .venv:

    .venv/bin/python data-fixtures/blip/gen_model_settings.py
"""
import json
import os
import shutil
import tempfile

import torch
import transformers
from PIL import Image
from transformers import BertTokenizerFast, BlipForConditionalGeneration, BlipProcessor

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "tiny-caption")
STEMS = ["rgb_wide", "grey", "rgba", "palette", "rgb_large"]
PROMPT = "a picture of"

# (name, text_config changes, prompt, generation_config.json changes)
VARIANTS = [
    ("beams3_max_length30", {"num_beams": 3, "max_length": 30}, None, None),
    ("beams3_max_length30_prompt", {"num_beams": 3, "max_length": 30}, PROMPT, None),
    ("max_length12_prompt", {"max_length": 12}, PROMPT, None),
    ("max_length20_prompt", {"max_length": 20}, PROMPT, None),
    ("max_new_tokens7", {"max_new_tokens": 7, "max_length": 30}, None, None),
    ("no_repeat_2", {"no_repeat_ngram_size": 2}, None, None),
    ("no_repeat_1_prompt", {"no_repeat_ngram_size": 1, "max_length": 14}, PROMPT, None),
    ("no_repeat_3_beams2", {"no_repeat_ngram_size": 3, "num_beams": 2, "max_length": 25}, None, None),
    ("min_length9_repetition", {"min_length": 9, "repetition_penalty": 1.5}, None, None),
    ("min_new_tokens_replaces_min_length", {"min_length": 9, "min_new_tokens": 2}, None, None),
    ("min_new_tokens0_replaces_min_length", {"min_length": 9, "min_new_tokens": 0}, None, None),
    ("beams4_length_penalty", {"num_beams": 4, "length_penalty": -1.0, "max_length": 24}, None, None),
    ("generation_config_json_ignored", {}, None, {"num_beams": 3, "max_length": 30}),
]


def images():
    out = []
    for stem in STEMS:
        im = Image.open(os.path.join(HERE, "images", stem + ".png"))
        im.load()
        out.append(im)
    return out


def run(model_dir, prompt, tokenizer=None):
    model = BlipForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = BlipProcessor.from_pretrained(model_dir)
    if tokenizer is not None:
        processor.tokenizer = tokenizer
    ids, texts = [], []
    for im in images():
        kwargs = {"images": im, "return_tensors": "pt"}
        if prompt:
            kwargs["text"] = prompt
        inputs = processor(**kwargs)
        with torch.no_grad():
            out = model.generate(**inputs)
        row = out[0].tolist()
        ids.append(row)
        texts.append(processor.decode(row, skip_special_tokens=True))
    return ids, texts


def variant_dir(tmp, name, text_changes, gen_changes):
    d = os.path.join(tmp, name)
    shutil.copytree(TINY, d)
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    config["text_config"].update(text_changes)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if gen_changes:
        with open(os.path.join(d, "generation_config.json")) as f:
            gen = json.load(f)
        gen.update(gen_changes)
        with open(os.path.join(d, "generation_config.json"), "w") as f:
            json.dump(gen, f, indent=2)
    return d


def main():
    torch.set_num_threads(2)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        base_ids, _ = run(TINY, None)
        for name, text_changes, prompt, gen_changes in VARIANTS:
            d = variant_dir(tmp, name, text_changes, gen_changes)
            ids, texts = run(d, prompt)
            records.append({
                "name": name,
                "text_config": text_changes,
                "generation_config_json": gen_changes,
                "prompt": prompt,
                "ids": ids,
                "text": texts,
            })
        ignored = next(r for r in records if r["name"] == "generation_config_json_ignored")
        assert ignored["ids"] == base_ids, "generation_config.json changed BLIP's generate"
        beams = next(r for r in records if r["name"] == "beams3_max_length30")
        assert beams["ids"] != base_ids

        # salesforce/BLIP's init_tokenizer layout.
        tok = BertTokenizerFast.from_pretrained(TINY)
        tok.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
        assert tok.convert_tokens_to_ids("[DEC]") == 30522
        assert tok.convert_tokens_to_ids("[ENC]") == 30523
        assert len(tok) == 30524
        layout_dir = os.path.join(HERE, "dec-in-tokenizer")
        shutil.rmtree(layout_dir, ignore_errors=True)
        tok.save_pretrained(layout_dir)
        for stale in ["vocab.txt"]:
            p = os.path.join(layout_dir, stale)
            if os.path.exists(p):
                os.remove(p)
        layout = []
        for prompt in [None, PROMPT]:
            ids, texts = run(TINY, prompt, tokenizer=tok)
            ref_ids, _ = run(TINY, prompt)
            assert ids == ref_ids, "the tokenizer layout changed the ids"
            layout.append({"prompt": prompt, "ids": ids, "text": texts})

    golden = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "images": STEMS,
        "variants": records,
        "dec_in_tokenizer": layout,
    }
    with open(os.path.join(HERE, "model-settings.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
