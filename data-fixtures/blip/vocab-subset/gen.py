"""Golden values for medcap-model's word-piece vocabulary subset
(`tokenizer::write_vocabulary_subset`), computed independently with
Hugging Face transformers.

The subset rule, implemented here a second time: from the bert-base-uncased
tokenizer of `../tiny-caption`, keep the special tokens, every piece the full
tokenizer gives a line of `corpus.txt`, and every printable ASCII character
alone and as `##c`; kept tokens keep their order. The cut vocabulary is then
loaded into transformers' slow `BertTokenizer` (from `vocab.txt`) and each
line of `texts.txt` encoded with it. Writes `golden.json`:
{"vocab": [...], "texts": [{"text": ..., "ids": [...]}]}.

Run with: python gen.py (transformers 4.57.1, tokenizers 0.22.2).
"""
import json
import os
import tempfile

from transformers import BertTokenizer, BertTokenizerFast

here = os.path.dirname(os.path.abspath(__file__))
full = BertTokenizerFast.from_pretrained(os.path.join(here, "..", "tiny-caption"))
vocab = full.get_vocab()
kept = {vocab[t] for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] if t in vocab}
for code in range(0x21, 0x7F):
    for piece in (chr(code), "##" + chr(code)):
        if piece in vocab:
            kept.add(vocab[piece])
with open(os.path.join(here, "corpus.txt"), encoding="utf-8") as f:
    for line in f.read().splitlines():
        kept.update(full(line, add_special_tokens=False)["input_ids"])
by_id = {i: t for t, i in vocab.items()}
order = [by_id[i] for i in sorted(kept)]
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in order))
    cut = BertTokenizer(os.path.join(tmp, "vocab.txt"), do_lower_case=True)
    with open(os.path.join(here, "texts.txt"), encoding="utf-8") as f:
        texts = [{"text": t, "ids": cut(t)["input_ids"]} for t in f.read().splitlines()]
with open(os.path.join(here, "golden.json"), "w", encoding="utf-8") as f:
    json.dump({"vocab": order, "texts": texts}, f, ensure_ascii=False, indent=1)
print(f"{len(order)} tokens, {len(texts)} texts")
