//! Properties of the metrics and their tokenizers over generated text (a
//! bounded number of cases each): no panic on any input, scores within their
//! range, symmetric where the definition is, 1 for identical texts where the
//! definition says so, and independent of the order of references.

use medcap_metrics::bleu::{Bleu, NltkSmoothing};
use medcap_metrics::cider::cider_d;
use medcap_metrics::porter::stem;
use medcap_metrics::rouge::{Rouge, RougeTokenizer};
use medcap_metrics::tokenize::{
    tokenize_13a, tokenize_rouge, tokenize_rouge_unicode, tokenize_whitespace,
};
use proptest::prelude::*;

/// Caption-like text over a small vocabulary (so that n-grams match), with
/// numbers, punctuation, case and odd characters mixed in.
fn caption() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        4 => prop::sample::select(vec![
            "left", "right", "pleural", "effusion", "small", "chest", "x-ray", "no",
            "pneumothorax", "Cardiomegaly", "lobe", "upper", "3.5", "cm", "mass",
        ])
        .prop_map(str::to_owned),
        1 => "[.,;:!?()'\"/-]",
        1 => "\\PC{1,4}",
    ];
    prop::collection::vec(word, 0..16).prop_map(|w| w.join(" "))
}

fn bleus() -> Vec<Bleu> {
    vec![
        Bleu::default(),
        Bleu::sacrebleu_sentence(),
        Bleu::nltk(NltkSmoothing::Method1),
        Bleu::nltk(NltkSmoothing::Method4),
    ]
}

fn in_unit_range(v: f64) -> bool {
    v.is_nan() || (0.0..=1.0 + 1e-12).contains(&v)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6d65_6463_6170), ..ProptestConfig::default() })]

    /// Every tokenizer takes any text; no token is empty or holds white space.
    #[test]
    fn tokenizers_take_any_text(text in "\\PC{0,80}", bytes in prop::collection::vec(any::<char>(), 0..40)) {
        let odd: String = bytes.into_iter().collect();
        for t in [&text, &odd] {
            for tokens in [tokenize_13a(t), tokenize_whitespace(t), tokenize_rouge(t), tokenize_rouge_unicode(t)] {
                prop_assert!(tokens.iter().all(|w| !w.is_empty() && !w.chars().any(char::is_whitespace)), "{:?} -> {:?}", t, tokens);
            }
        }
    }

    /// The Porter stemmer takes any word.
    #[test]
    fn the_stemmer_takes_any_word(word in "\\PC{0,24}") {
        let _ = stem(&word);
        let lower = word.to_lowercase();
        let _ = stem(&lower);
    }

    /// BLEU of every convention lies in [0, 1] (or is NaN where nltk's
    /// method is undefined), does not depend on the order of references, and
    /// is 1 for a text of four or more tokens against itself.
    #[test]
    fn bleu_is_bounded_order_free_and_one_for_identical_texts(h in caption(), r1 in caption(), r2 in caption()) {
        for bleu in bleus() {
            let ab = bleu.sentence(&h, &[&r1, &r2]);
            let ba = bleu.sentence(&h, &[&r2, &r1]);
            prop_assert!(in_unit_range(ab), "{:?}: {}", bleu, ab);
            prop_assert!(ab == ba || (ab.is_nan() && ba.is_nan()), "{:?}: {} vs {}", bleu, ab, ba);
            if bleu.tokenize(&h).len() >= 4 {
                let same = bleu.sentence(&h, &[&h]);
                prop_assert!((same - 1.0).abs() < 1e-9, "{:?} on {:?}: {}", bleu, h, same);
            }
        }
    }

    /// ROUGE F-measures lie in [0, 1], are symmetric (precision and recall
    /// swap), are 1 for a text against itself, and the best of several
    /// references does not depend on their order.
    #[test]
    fn rouge_is_bounded_symmetric_and_order_free(h in caption(), r1 in caption(), r2 in caption(), stemmer in any::<bool>(), unicode in any::<bool>()) {
        let rouge = Rouge {
            stemmer,
            tokenizer: if unicode { RougeTokenizer::Unicode } else { RougeTokenizer::default() },
        };
        let s = rouge.score(&h, &r1);
        let t = rouge.score(&r1, &h);
        for (a, b) in [(s.rouge1, t.rouge1), (s.rouge2, t.rouge2), (s.rouge_l, t.rouge_l), (s.rouge_lsum, t.rouge_lsum)] {
            prop_assert!(in_unit_range(a.fmeasure) && in_unit_range(a.precision) && in_unit_range(a.recall));
            prop_assert!((a.fmeasure - b.fmeasure).abs() < 1e-12);
            prop_assert!((a.precision - b.recall).abs() < 1e-12);
        }
        if !rouge.tokenize(&h).is_empty() {
            let same = rouge.score(&h, &h);
            prop_assert!((same.rouge1.fmeasure - 1.0).abs() < 1e-12 && (same.rouge_l.fmeasure - 1.0).abs() < 1e-12);
        }
        let ab = rouge.score_multi(&h, &[&r1, &r2]);
        let ba = rouge.score_multi(&h, &[&r2, &r1]);
        prop_assert!((ab.rouge1.fmeasure - ba.rouge1.fmeasure).abs() < 1e-12);
        prop_assert!((ab.rouge_l.fmeasure - ba.rouge_l.fmeasure).abs() < 1e-12);
    }

    /// CIDEr-D is never negative, at most 10 per image, and does not depend
    /// on the order of an image's references.
    #[test]
    fn cider_d_is_bounded_and_order_free(pairs in prop::collection::vec((caption(), caption(), caption()), 1..6)) {
        let tokens = |t: &String| t.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let forward: Vec<(Vec<String>, Vec<Vec<String>>)> = pairs.iter().map(|(h, a, b)| (tokens(h), vec![tokens(a), tokens(b)])).collect();
        let backward: Vec<(Vec<String>, Vec<Vec<String>>)> = pairs.iter().map(|(h, a, b)| (tokens(h), vec![tokens(b), tokens(a)])).collect();
        let (f, b) = (cider_d(&forward), cider_d(&backward));
        for (x, y) in f.per_image.iter().zip(&b.per_image) {
            prop_assert!((0.0..=10.0 + 1e-9).contains(x), "{}", x);
            prop_assert!((x - y).abs() < 1e-9, "{} vs {}", x, y);
        }
    }
}
