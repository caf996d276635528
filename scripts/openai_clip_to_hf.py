#!/usr/bin/env python3
"""Converts a CLIP checkpoint in OpenAI's layout (the `clip` package's state dict: `visual.conv1`,
`visual.transformer.resblocks.N.attn.in_proj_weight`, `token_embedding`, ...) into a Hugging Face
`CLIPModel` directory that `medcap score --clip-model` reads: config.json (geometry read from the
weights, OpenAI's quick GELU, 64-channel heads, pooling at the highest token id as OpenAI's model
pools) and model.safetensors. The tokenizer and image processor files are copied from a Hugging
Face CLIP directory of the same vocabulary (`--tokenizer-from`, e.g. openai/clip-vit-base-patch32).

For PAC-S (Sarto et al., 2023): its released `clip_ViT-B-32.pth` holds `{"state_dict": ...}` of
OpenAI's ViT-B/32 fine-tuned with positive augmentations:

    python scripts/openai_clip_to_hf.py clip_ViT-B-32.pth pacs-vit-b-32 \\
        --tokenizer-from clip-vit-base-patch32
    medcap score --hyps hyps.txt --images images.txt --clip-model pacs-vit-b-32 --clip-score-form pacs

Needs torch and safetensors. The checkpoint is unpickled (`torch.load`): convert only files you
trust. Images are then preprocessed as transformers' CLIPImageProcessor does; OpenAI's transform
crops with torchvision, whose offset rounds half to even where CLIPImageProcessor floors (a
one-pixel shift for some image sizes).
"""
import argparse
import json
import os
import re
import shutil

import torch
from safetensors.torch import save_file

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "preprocessor_config.json")


def layer_keys(sd, prefix, out_prefix, out):
    """One tower's residual blocks: the fused in_proj split into q, k, v."""
    n = 0
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    for key in sd:
        m = pattern.match(key)
        if m:
            n = max(n, int(m.group(1)) + 1)
    for i in range(n):
        src, dst = f"{prefix}{i}.", f"{out_prefix}{i}."
        w, b = sd[src + "attn.in_proj_weight"], sd[src + "attn.in_proj_bias"]
        width = w.shape[1]
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
            out[dst + f"self_attn.{name}.weight"] = w[j * width:(j + 1) * width]
            out[dst + f"self_attn.{name}.bias"] = b[j * width:(j + 1) * width]
        for a, h in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                     ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
            out[dst + h + ".weight"] = sd[src + a + ".weight"]
            out[dst + h + ".bias"] = sd[src + a + ".bias"]
    return n


def convert(sd):
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    if "visual.conv1.weight" not in sd:
        raise SystemExit("not an OpenAI CLIP ViT state dict: no visual.conv1.weight "
                         f"(found {', '.join(sorted(sd)[:6])}, ...)")
    out = {}
    v = "vision_model."
    out[v + "embeddings.class_embedding"] = sd["visual.class_embedding"]
    out[v + "embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    out[v + "embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    for a, h in (("visual.ln_pre", "pre_layrnorm"), ("visual.ln_post", "post_layernorm")):
        out[v + h + ".weight"], out[v + h + ".bias"] = sd[a + ".weight"], sd[a + ".bias"]
    vision_layers = layer_keys(sd, "visual.transformer.resblocks.", v + "encoder.layers.", out)
    t = "text_model."
    out[t + "embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    out[t + "embeddings.position_embedding.weight"] = sd["positional_embedding"]
    out[t + "final_layer_norm.weight"], out[t + "final_layer_norm.bias"] = sd["ln_final.weight"], sd["ln_final.bias"]
    text_layers = layer_keys(sd, "transformer.resblocks.", t + "encoder.layers.", out)
    out["visual_projection.weight"] = sd["visual.proj"].t()
    out["text_projection.weight"] = sd["text_projection"].t()
    out["logit_scale"] = sd["logit_scale"].reshape(())
    conv = sd["visual.conv1.weight"]
    width, patch = conv.shape[0], conv.shape[-1]
    grid = int(round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5))
    vocab, text_width = sd["token_embedding.weight"].shape
    config = {
        "model_type": "clip",
        "architectures": ["CLIPModel"],
        "projection_dim": sd["text_projection"].shape[1],
        "logit_scale_init_value": 2.6592,
        "text_config": {
            "hidden_size": text_width, "intermediate_size": sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
            "num_hidden_layers": text_layers, "num_attention_heads": text_width // 64,
            "max_position_embeddings": sd["positional_embedding"].shape[0], "vocab_size": vocab,
            "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
            # OpenAI's model pools at the highest id (its end-of-text token); transformers and
            # medcap read eos_token_id 2 as that rule.
            "eos_token_id": 2, "bos_token_id": vocab - 2, "pad_token_id": 1,
        },
        "vision_config": {
            "hidden_size": width, "intermediate_size": sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
            "num_hidden_layers": vision_layers, "num_attention_heads": width // 64,
            "image_size": grid * patch, "patch_size": patch, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
        },
    }
    return {k: t.detach().float().contiguous().clone() for k, t in out.items()}, config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="OpenAI-layout state dict (.pt/.pth), or {'state_dict': ...}")
    parser.add_argument("out", help="the Hugging Face directory to write")
    parser.add_argument("--tokenizer-from", required=True,
                        help="a Hugging Face CLIP directory whose tokenizer and preprocessor files are copied")
    args = parser.parse_args()
    loaded = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    if hasattr(loaded, "state_dict"):
        loaded = loaded.state_dict()
    sd = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    tensors, config = convert(sd)
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "model.safetensors"))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in TOKENIZER_FILES:
        src = os.path.join(args.tokenizer_from, name)
        if os.path.isfile(src):
            shutil.copy(src, os.path.join(args.out, name))
    print(f"wrote {args.out}: vision {config['vision_config']['num_hidden_layers']} layers of "
          f"{config['vision_config']['hidden_size']}, text {config['text_config']['num_hidden_layers']} "
          f"layers of {config['text_config']['hidden_size']}")


if __name__ == "__main__":
    main()
