//! Properties of the parsers of user data, over generated inputs (a bounded
//! number of cases each): JSONL lines of any bytes, figure records of any
//! JSON, caption cleanup and the keyword filter on any text.

use medcap_dataset::clean::clean_caption;
use medcap_dataset::filter::{FigureSelector, KeywordRule, Selection};
use medcap_dataset::reader::{parse_line, parse_line_as};
use proptest::prelude::*;

/// Caption-like text: words, numbers with units, figure labels, brackets,
/// punctuation, non-ASCII letters and odd white space.
fn caption_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[A-Za-z]{1,9}",
        "[0-9]{1,3}(\\.[0-9]{1,2})? ?(cm|mm|%|kg|ml)",
        "Fig\\. ?[0-9][A-Da-d]?\\.?",
        "\\((arrow|A|B|arrows|asterisk|[a-d])\\)",
        "[.,;:!?()\\[\\]{}/\\-]",
        "[éüßøñ中文]{1,3}",
        "[ \t\n\u{a0}]{1,3}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|parts| parts.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6d65_6463_6170), ..ProptestConfig::default() })]

    /// Any bytes: a record, a report naming the line, or nothing for a
    /// blank line; never a panic.
    #[test]
    fn a_jsonl_line_of_any_bytes_parses_or_is_reported(bytes in prop::collection::vec(any::<u8>(), 0..300), line in 1u64..1_000_000) {
        match parse_line(line, &bytes) {
            None => prop_assert!(bytes.iter().all(u8::is_ascii_whitespace)),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                prop_assert_eq!(e.line, line);
                prop_assert!(!e.reason.is_empty());
            }
        }
    }

    /// JSON objects with the required keys of any type, nested values,
    /// duplicated keys and NUL characters: a record or a report.
    #[test]
    fn a_json_object_of_any_shape_parses_or_is_reported(
        keys in prop::collection::vec(prop_oneof![Just("pdf_hash".to_owned()), Just("fig_uri".to_owned()), Just("fig_key".to_owned()), Just("s2_caption".to_owned()), "[a-z_]{1,8}"], 0..8),
        values in prop::collection::vec(prop_oneof![Just("\"x\\u0000y\"".to_owned()), Just("null".to_owned()), Just("[1,{\"a\":[]}]".to_owned()), Just("{\"k\":{\"k\":1}}".to_owned()), "\"[a-z0-9 ]{0,10}\"", "-?[0-9]{1,20}(\\.[0-9]+)?(e[0-9]{1,3})?"], 0..8),
    ) {
        let fields: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let line = format!("{{{}}}", fields.join(","));
        if let Some(Ok(record)) = parse_line(7, line.as_bytes()) {
            // A record has what `id` needs.
            prop_assert!(!record.id().is_empty());
        }
        // Any other type is a report too.
        let _ = parse_line_as::<Vec<u8>>(7, line.as_bytes(), "bytes");
    }

    /// Cleaning a cleaned caption changes nothing; cleaning never makes a
    /// caption longer (in characters, after white space is collapsed) and
    /// never panics.
    #[test]
    fn cleanup_is_idempotent_and_never_grows(raw in caption_text()) {
        let once = clean_caption(&raw);
        prop_assert_eq!(clean_caption(&once), once.clone(), "raw: {:?}", raw);
        let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        prop_assert!(once.chars().count() <= collapsed.chars().count() + 1, "{:?} -> {:?}", raw, once);
    }

    /// A measurement in a sentence survives cleanup digit for digit.
    #[test]
    fn numbers_with_units_survive_cleanup(
        before in "[A-Z][a-z]{2,8}( [a-z]{2,8}){0,3}",
        number in "[1-9][0-9]?(\\.[0-9])?",
        unit in prop_oneof![Just("cm"), Just("mm"), Just("%"), Just("ml")],
        after in "( [a-z]{2,8}){0,4}",
    ) {
        let measure = if unit == "%" { format!("{number}%") } else { format!("{number} {unit}") };
        let raw = format!("{before} of {measure}{after}.");
        let cleaned = clean_caption(&raw);
        prop_assert!(cleaned.contains(&measure), "{:?} -> {:?}", raw, cleaned);
    }

    /// The keyword filter takes any keyword list: a clear error or a rule; a
    /// rule keeps a caption with its keyword as a whole word in any case.
    #[test]
    fn keywords_of_any_text_compile_or_are_refused(keyword in "\\PC{0,12}", caption in caption_text()) {
        if let Ok(rule) = KeywordRule::new(&[keyword.as_str()], &[]) {
            let _ = rule.select(&caption);
            let word = keyword.trim();
            // Word characters (letters and decimal digits: a numeral such as
            // "𐋡" is no word character, so no word boundary surrounds it)
            // whose upper case is one letter (the regex's simple case
            // folding; "ᾶ" upper-cases to two characters).
            let simple = |c: char| {
                (c.is_alphabetic() || c.is_ascii_digit()) && c.to_uppercase().count() == 1
            };
            if !word.is_empty() && word.chars().all(simple) {
                let mixed = format!("a {} b", word.to_uppercase());
                prop_assert_eq!(rule.select(&mixed), Selection::Keep, "{:?}", word);
            }
        }
    }
}

/// Found by the properties above: a space before punctuation that follows
/// punctuation ("a ! ? a" cleaned to "a! ? a", then to "a!? a").
#[test]
fn punctuation_runs_clean_in_one_pass() {
    for (raw, clean) in [
        ("a ! ? a", "a!? a"),
        ("Effusion . , ; noted", "Effusion. noted"),
        // Found by fuzzing: the emptied brackets leave a panel letter at
        // the start, which only a second round removes.
        (
            "Figure 6. ( ) C. ( ) Chest CT [hest CT [ ].",
            "Chest CT [hest CT.",
        ),
        ("Figure 2. ( ) B. Chest radiograph.", "Chest radiograph."),
    ] {
        let once = clean_caption(raw);
        assert_eq!(once, clean, "{raw:?}");
        assert_eq!(clean_caption(&once), once);
    }
}
