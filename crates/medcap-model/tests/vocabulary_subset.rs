//! A word-piece vocabulary cut down to a corpus: the corpus tokenizes to the
//! same pieces as with the full bert-base-uncased vocabulary, other ASCII
//! words are still spelled, the kept tokens and the ids equal transformers'
//! (`data-fixtures/blip/vocab-subset`), and BLIP's tokenizer puts `[DEC]`
//! after the cut vocabulary, as the model's config says.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use medcap_model::blip::BlipConfig;
use medcap_model::tokenizer::{BlipTokenizer, write_vocabulary_subset};

const FULL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data-fixtures/blip/tiny-caption"
);

const CORPUS: [&str; 4] = [
    "Chest radiograph showing a 2.4 cm nodule in the right upper zone (arrow).",
    "A 57-year-old woman with cough and fever. PA chest radiograph demonstrates a small left-sided pleural effusion.",
    "a red circle on the left and a blue triangle at the top",
    "Cardiomegaly with a cardiothoracic ratio of 0.61 on portable AP chest X-ray.",
];

fn text_config(len: i64, sep: i64, pad: i64) -> medcap_model::blip::BlipTextConfig {
    let mut c = BlipConfig::default().text_config;
    c.vocab_size = len + 2;
    c.bos_token_id = len;
    c.sep_token_id = sep;
    c.pad_token_id = pad;
    c
}

fn pieces(tokenizer: &tokenizers::Tokenizer, text: &str) -> Vec<String> {
    tokenizer.encode(text, true).unwrap().get_tokens().to_vec()
}

#[test]
fn the_corpus_tokenizes_as_with_the_full_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let subset = write_vocabulary_subset(Path::new(FULL), dir.path(), CORPUS).unwrap();
    let mut full =
        tokenizers::Tokenizer::from_file(Path::new(FULL).join("tokenizer.json")).unwrap();
    full.with_padding(None);
    full.with_truncation(None).unwrap();
    let cut = tokenizers::Tokenizer::from_file(dir.path().join("tokenizer.json")).unwrap();
    // Specials, 94 ASCII characters alone and continued, and the corpus's pieces.
    assert!(subset.len > 150 && subset.len < 400, "{}", subset.len);
    assert_eq!(cut.get_vocab_size(true) as i64, subset.len);
    for text in CORPUS {
        assert_eq!(pieces(&cut, text), pieces(&full, text), "{text}");
        let ids = cut.encode(text, true).unwrap().get_ids().to_vec();
        assert_eq!(ids[0] as i64, subset.cls);
        assert_eq!(*ids.last().unwrap() as i64, subset.sep);
        assert!(ids.iter().all(|&i| (i as i64) < subset.len));
    }
    assert_eq!(subset.pad, 0, "[PAD] keeps the first id");
    // A word the corpus lacks is spelled from pieces, never [UNK]; the text
    // comes back as it went in.
    let unseen = "pneumomediastinum xyz";
    let tokens = pieces(&cut, unseen);
    assert!(!tokens.iter().any(|t| t == "[UNK]"), "{tokens:?}");
    let ids = cut.encode(unseen, false).unwrap().get_ids().to_vec();
    assert_eq!(cut.decode(&ids, true).unwrap(), unseen);
    // vocab.txt lists the same tokens in id order, for transformers' slow tokenizer.
    let lines = std::fs::read_to_string(dir.path().join("vocab.txt")).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len() as i64, subset.len);
    for (i, token) in lines.iter().enumerate() {
        assert_eq!(cut.token_to_id(token), Some(i as u32), "{token}");
    }
    for name in ["tokenizer_config.json", "special_tokens_map.json"] {
        assert!(dir.path().join(name).is_file(), "{name}");
    }
}

#[test]
fn blip_tokenizer_puts_dec_after_the_cut_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let subset = write_vocabulary_subset(Path::new(FULL), dir.path(), CORPUS).unwrap();
    let config = text_config(subset.len, subset.sep, subset.pad);
    let tokenizer = BlipTokenizer::from_dir(dir.path(), &config).unwrap();
    assert_eq!(tokenizer.dec_id(), subset.len);
    assert_eq!(tokenizer.decoder_prompt(None).unwrap(), vec![subset.len]);
    let prompt = tokenizer.decoder_prompt(Some("a chest")).unwrap();
    assert_eq!(prompt[0], subset.len);
    assert_eq!(prompt.len(), 3);
    // [DEC] and [ENC] never show in decoded text.
    let mut ids = vec![subset.len, subset.len + 1];
    ids.extend(tokenizer.encode("a nodule").unwrap());
    assert_eq!(tokenizer.decode(&ids).unwrap(), "a nodule");
}

#[test]
fn a_config_that_disagrees_with_the_tokenizer_is_refused_by_name_and_dec_anywhere_in_the_embedding_loads()
 {
    let dir = tempfile::tempdir().unwrap();
    let subset = write_vocabulary_subset(Path::new(FULL), dir.path(), CORPUS).unwrap();
    // The Hub's ids (sep 102, [DEC] 30522) do not fit the cut vocabulary.
    let hub = BlipConfig::default().text_config;
    let err = BlipTokenizer::from_dir(dir.path(), &hub)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("[SEP]"),
        "{err}"
    );
    // [DEC] inside the tokenizer's own ids runs in transformers (its
    // embedding row is all it needs), so it loads; past vocab_size it has
    // no row.
    let mut inside = text_config(subset.len, subset.sep, subset.pad);
    inside.bos_token_id = 5;
    assert_eq!(
        BlipTokenizer::from_dir(dir.path(), &inside)
            .unwrap()
            .dec_id(),
        5
    );
    let mut outside = text_config(subset.len, subset.sep, subset.pad);
    outside.bos_token_id = outside.vocab_size;
    let err = BlipTokenizer::from_dir(dir.path(), &outside)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("bos_token_id {}", outside.vocab_size)),
        "{err}"
    );
    // Not a word-piece tokenizer at all.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("tokenizer.json"), "{}").unwrap();
    let err = write_vocabulary_subset(bad.path(), dir.path(), CORPUS)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
}

/// The subset and its tokenization equal transformers': the same tokens
/// kept (`gen.py` applies the rule a second time, in Python) and the same
/// ids from the slow `BertTokenizer` over the cut `vocab.txt`, on texts
/// with unseen words, accents, upper case, CJK, white space and specials.
#[test]
fn the_subset_and_its_ids_equal_transformers() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip/vocab-subset");
    let corpus = std::fs::read_to_string(fixture.join("corpus.txt")).unwrap();
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("golden.json")).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let subset = write_vocabulary_subset(Path::new(FULL), dir.path(), corpus.lines()).unwrap();
    let want: Vec<&str> = golden["vocab"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let vocab_txt = std::fs::read_to_string(dir.path().join("vocab.txt")).unwrap();
    assert_eq!(vocab_txt.lines().collect::<Vec<_>>(), want);
    assert_eq!(subset.len as usize, want.len());
    let config = text_config(subset.len, subset.sep, subset.pad);
    let tokenizer = BlipTokenizer::from_dir(dir.path(), &config).unwrap();
    let cases = golden["texts"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let ids: Vec<i64> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(tokenizer.encode(text).unwrap(), ids, "{text:?}");
    }
}
