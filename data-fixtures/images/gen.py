#!/usr/bin/env python3
"""Golden fixtures for image decoding: what Pillow gives for every JPEG and PNG kind a user brings,
and what transformers computes from those pixels with the tiny BLIP checkpoints.

What it makes (under data-fixtures/images/, see README.md there):

* inputs/      the encoded files: JPEGs written by Pillow (4:2:0, 4:2:2, 4:4:4, progressive, optimised
               Huffman tables, restart markers, greyscale, CMYK, an EXIF orientation tag, odd and
               one-pixel sizes), JPEGs written by libjpeg-turbo through imagecodecs for what Pillow
               cannot write (4:1:1, 4:4:0, YCCK, RGB colour space, lossless), PNGs in every mode Pillow reads
               (1, L, LA, P with and without transparency, RGB, RGBA, 16-bit greyscale, 16-bit RGB,
               RGBA and grey+alpha, 2-bit greyscale, an animated PNG), two truncated files;
* expected/    `Image.open(input).convert("RGB")` of each readable input, as an 8-bit RGB PNG
               (lossless: compare byte for byte);
* golden.json  versions, for each input its Pillow mode, size and sha256 (or the error Pillow
               raises), and for the JPEGs the tiny checkpoints' outputs in transformers 4.57.1:
               greedy token ids of `data-fixtures/blip/tiny-caption` (with the smallest top-1/top-2
               logit margin, so that a reader sees how safe the comparison is) and ITM probability /
               ITC similarity of `data-fixtures/blip/tiny-itm` for the text "a chest x-ray".

The pictures are synthetic (gradients, a sine pattern, a checkerboard, discs and noise): JPEG
decoders differ most on edges and noise, and a flat picture would hide the difference.

Versions used for the committed files: Python 3.11, pillow 13.0.0 (libjpeg-turbo 3.2.0, zlib 1.2.13),
imagecodecs 2026.3.6 (libjpeg-turbo 3.1.3), numpy 2.4.6, torch 2.11.0 (CPU, fp32, 2 threads),
transformers 4.57.1. Rerun from the repository root in a scratch environment that has them, for
example:

    .venv/bin/pip install --target /tmp/imgref pillow==13.0.0 imagecodecs==2026.3.6 \\
        transformers==4.57.1 numpy==2.4.6 --no-deps    # plus transformers' small dependencies
    PYTHONPATH=/tmp/imgref .venv/bin/python data-fixtures/images/gen.py
"""
import hashlib
import io
import json
import os
import platform
import shutil
import struct
import zlib

import numpy as np
import PIL
from PIL import Image, features

HERE = os.path.dirname(os.path.abspath(__file__))
BLIP = os.path.join(HERE, "..", "blip")
ITM_TEXT = "a chest x-ray"
MAX_NEW_TOKENS = 20


def picture(w, h, seed):
    """An RGB picture with the structures JPEG decoders disagree on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 5.0 + seed) * np.cos(y / 7.0)
    g = 255 * x / max(w - 1, 1)
    b = 255.0 * (((x // 6) + (y // 6)) % 2)
    disc = (x - 0.6 * w) ** 2 + (y - 0.4 * h) ** 2 < (0.2 * min(w, h)) ** 2
    rgb = np.stack([r, g, b], -1)
    rgb[disc] = [250, 40, 30]
    rgb += rng.normal(0, 18, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def png_bytes(samples, width, color_type, bit_depth, palette=None, trns=None):
    """A PNG written by hand, for the kinds Pillow cannot write (16-bit colour, 2-bit grey).
    `samples` holds the rows: 16-bit samples, or bytes already packed for depths below 8."""
    h = samples.shape[0]

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    if bit_depth == 16:
        rows = samples.astype(">u2").reshape(h, -1).view(np.uint8)
    else:
        rows = samples.astype(np.uint8).reshape(h, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    ihdr = struct.pack(">IIBBBBB", width, h, bit_depth, color_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if palette is not None:
        out += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def jpeg_inputs():
    """name -> encoded bytes."""
    import imagecodecs

    out = {}
    photo = Image.fromarray(picture(67, 45, 1), "RGB")
    large = Image.fromarray(picture(160, 120, 2), "RGB")

    def save(img, **kw):
        buf = io.BytesIO()
        img.save(buf, "JPEG", **kw)
        return buf.getvalue()

    # The commonest kind of figure: a colour photo, 4:2:0, quality 90.
    out["jpeg_rgb_420_q90"] = save(photo, quality=90, subsampling="4:2:0")
    out["jpeg_rgb_422_q90"] = save(photo, quality=90, subsampling="4:2:2")
    out["jpeg_rgb_444_q95"] = save(photo, quality=95, subsampling="4:4:4")
    out["jpeg_rgb_420_q30"] = save(photo, quality=30, subsampling="4:2:0")
    out["jpeg_rgb_420_progressive"] = save(photo, quality=80, progressive=True)
    out["jpeg_rgb_422_progressive_optimized"] = save(
        photo, quality=70, subsampling="4:2:2", progressive=True, optimize=True)
    out["jpeg_rgb_420_restart"] = save(large, quality=85, restart_marker_blocks=3)
    out["jpeg_rgb_large_420"] = save(large, quality=88)
    out["jpeg_rgb_odd_7x5"] = save(Image.fromarray(picture(7, 5, 3), "RGB"), quality=90)
    out["jpeg_rgb_1x1"] = save(Image.fromarray(picture(1, 1, 4), "RGB"), quality=90)
    out["jpeg_grey_q85"] = save(photo.convert("L"), quality=85)
    out["jpeg_grey_progressive"] = save(large.convert("L"), quality=75, progressive=True)
    cmyk = Image.fromarray(
        np.concatenate([255 - picture(67, 45, 5), np.tile(np.linspace(0, 200, 67, dtype=np.uint8), (45, 1))[..., None]], -1),
        "CMYK")
    out["jpeg_cmyk_pillow"] = save(cmyk, quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    out["jpeg_rgb_exif_rotate90"] = save(photo, quality=90, exif=exif)
    # What Pillow cannot write: libjpeg-turbo through imagecodecs.
    rgb = picture(67, 45, 6)
    for ss in ["411", "440"]:
        out[f"jpeg_rgb_{ss}_libjpeg"] = imagecodecs.jpeg8_encode(rgb, level=85, subsampling=ss)
    cmyk_raw = np.concatenate([255 - rgb, np.tile(np.linspace(0, 255, 45, dtype=np.uint8)[:, None], (1, 67))[..., None]], -1)
    out["jpeg_ycck_libjpeg"] = imagecodecs.jpeg8_encode(cmyk_raw, level=90, colorspace="CMYK", outcolorspace="YCCK")
    out["jpeg_cmyk_libjpeg"] = imagecodecs.jpeg8_encode(cmyk_raw, level=90, colorspace="CMYK", outcolorspace="CMYK")
    out["jpeg_rgb_colourspace_libjpeg"] = imagecodecs.jpeg8_encode(rgb, level=85, colorspace="RGB", outcolorspace="RGB")
    # Lossless JPEG (SOF3): Pillow 13 reads it, medcap refuses it (see README.md).
    out["jpeg_rgb_lossless_libjpeg"] = imagecodecs.jpeg8_encode(rgb, lossless=True)
    return out


def png_inputs():
    out = {}
    rgb = picture(41, 29, 7)

    def save(img, **kw):
        buf = io.BytesIO()
        img.save(buf, "PNG", **kw)
        return buf.getvalue()

    out["png_rgb"] = save(Image.fromarray(rgb, "RGB"))
    out["png_l"] = save(Image.fromarray(rgb, "RGB").convert("L"))
    alpha = np.tile(np.linspace(0, 255, 41).astype(np.uint8), (29, 1))
    la = np.stack([rgb[..., 0], alpha], -1)
    out["png_la"] = save(Image.fromarray(la, "LA"))
    out["png_rgba"] = save(Image.fromarray(np.concatenate([rgb, alpha[..., None]], -1), "RGBA"))
    pal = Image.fromarray(rgb, "RGB").quantize(colors=16, dither=Image.Dither.NONE)
    out["png_p"] = save(pal)
    out["png_p_transparency"] = save(pal, transparency=3)
    out["png_1bit"] = save(Image.fromarray(rgb[..., 1] > 128))
    # 16-bit greyscale (Pillow mode I;16): values below and far above 255.
    g16 = (np.arange(41 * 29, dtype=np.uint32).reshape(29, 41) * 53) % 65536
    g16[0, :8] = [0, 1, 200, 255, 256, 300, 1000, 65535]
    out["png_grey16"] = png_bytes(g16.astype(np.uint16), 41, 0, 16)
    # 16-bit colour: the high byte is kept (0xC800 -> 200), the low byte ignored.
    rgb16 = rgb.astype(np.uint16) * 257 + np.random.default_rng(8).integers(0, 255, rgb.shape, dtype=np.uint16)
    rgb16[0, 0] = [0xC800, 0xC8FF, 0x00FF]
    out["png_rgb16"] = png_bytes(rgb16, 41, 2, 16)
    rgba16 = np.concatenate([rgb16, (alpha.astype(np.uint16) * 257)[..., None]], -1)
    out["png_rgba16"] = png_bytes(rgba16, 41, 6, 16)
    la16 = np.stack([rgb16[..., 0], alpha.astype(np.uint16) * 257], -1)
    out["png_la16"] = png_bytes(la16, 41, 4, 16)
    # 2-bit greyscale: 0..3 scaled to 0, 85, 170, 255.
    levels = (rgb[..., 2] // 64).astype(np.uint8)
    pad = (-41) % 4
    lv = np.concatenate([levels, np.zeros((29, pad), np.uint8)], 1).reshape(29, -1, 4)
    rows = (lv[..., 0] << 6) | (lv[..., 1] << 4) | (lv[..., 2] << 2) | lv[..., 3]
    out["png_grey2"] = png_bytes(rows, 41, 0, 2)
    # An animated PNG: Image.open reads the first frame.
    frames = [Image.fromarray(picture(23, 17, s), "RGB") for s in (9, 10, 11)]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out["png_animated"] = buf.getvalue()
    return out


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def tiny_outputs(paths):
    import torch
    import transformers
    from transformers import BlipForConditionalGeneration, BlipForImageTextRetrieval, BlipProcessor

    torch.set_num_threads(2)
    cap_dir = os.path.join(BLIP, "tiny-caption")
    itm_dir = os.path.join(BLIP, "tiny-itm")
    cap_proc = BlipProcessor.from_pretrained(cap_dir)
    cap = BlipForConditionalGeneration.from_pretrained(cap_dir).eval()
    itm_proc = BlipProcessor.from_pretrained(itm_dir)
    itm = BlipForImageTextRetrieval.from_pretrained(itm_dir).eval()
    out = {}
    for name, path in paths.items():
        image = Image.open(path)
        try:
            pv = cap_proc(images=image, return_tensors="pt")["pixel_values"]
        except ValueError as e:
            # transformers guesses the channel axis from the shape and fails on a 1x1 picture
            out[name] = {"transformers_error": str(e)}
            continue
        with torch.no_grad():
            gen = cap.generate(pixel_values=pv, max_new_tokens=MAX_NEW_TOKENS, num_beams=1, do_sample=False,
                               output_scores=True, return_dict_in_generate=True)
            margin = min(float(torch.topk(s[0].double(), 2).values.diff().abs()) for s in gen.scores)
            enc = itm_proc(images=image, text=ITM_TEXT, return_tensors="pt")
            probs = itm(**enc, use_itm_head=True).itm_score.softmax(-1)
            sim = itm(**enc, use_itm_head=False).itm_score
        out[name] = {
            "greedy_ids": gen.sequences[0].tolist(),
            "greedy_min_margin": margin,
            "itm_probability": float(probs[0, 1]),
            "itc_similarity": float(sim[0, 0]),
        }
    return out, transformers.__version__, torch.__version__


def main():
    import imagecodecs

    inputs_dir = os.path.join(HERE, "inputs")
    expected_dir = os.path.join(HERE, "expected")
    for d in (inputs_dir, expected_dir):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    files = {}
    for name, data in {**jpeg_inputs(), **png_inputs()}.items():
        ext = "jpg" if name.startswith("jpeg") else "png"
        files[name] = (f"{name}.{ext}", data)
    # Truncated files: Pillow refuses them ("image file is truncated").
    files["jpeg_truncated"] = ("jpeg_truncated.jpg", files["jpeg_rgb_420_q90"][1][: len(files["jpeg_rgb_420_q90"][1]) // 2])
    files["png_truncated"] = ("png_truncated.png", files["png_rgb"][1][: len(files["png_rgb"][1]) // 2])
    records = {}
    for name, (file_name, data) in sorted(files.items()):
        path = os.path.join(inputs_dir, file_name)
        with open(path, "wb") as f:
            f.write(data)
        rec = {"file": f"inputs/{file_name}", "sha256": sha256(data)}
        try:
            im = Image.open(path)
            rec["pillow_mode"] = im.mode
            rec["size_wh"] = list(im.size)
            rgb = im.convert("RGB")
        except OSError as e:
            rec["pillow_error"] = str(e)
        else:
            exp = os.path.join(expected_dir, f"{name}.png")
            rgb.save(exp)
            rec["expected"] = f"expected/{name}.png"
        records[name] = rec
    jpegs = {n: os.path.join(HERE, r["file"]) for n, r in records.items() if n.startswith("jpeg") and "expected" in r}
    tiny, tf_version, torch_version = tiny_outputs(jpegs)
    for n, t in tiny.items():
        records[n]["tiny"] = t
    golden = {
        "generator": "data-fixtures/images/gen.py",
        "versions": {
            "python": platform.python_version(),
            "pillow": PIL.__version__,
            "pillow_libjpeg_turbo": features.version("libjpeg_turbo"),
            "pillow_zlib": features.version("zlib"),
            "imagecodecs": imagecodecs.__version__,
            "imagecodecs_jpeg": imagecodecs.jpeg8_version(),
            "numpy": np.__version__,
            "transformers": tf_version,
            "torch": torch_version,
        },
        "tiny": {
            "caption_dir": "data-fixtures/blip/tiny-caption",
            "itm_dir": "data-fixtures/blip/tiny-itm",
            "itm_text": ITM_TEXT,
            "generate": {"max_new_tokens": MAX_NEW_TOKENS, "num_beams": 1, "do_sample": False},
            "pixels": "BlipProcessor(images=Image.open(file)): convert('RGB'), bicubic resize, CLIP normalisation",
        },
        "inputs": records,
    }
    with open(os.path.join(HERE, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
