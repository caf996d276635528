//! Degenerate repetition in generated captions: a word said several times in
//! a row ("chest chest chest", "0. 0. 0."), the failure of a captioner whose
//! decoder has stopped looking at the image. Words are maximal runs of
//! alphanumeric characters, compared case-insensitively, so punctuation
//! between the repeats does not hide them.

/// The length of the longest run of one word repeated back to back in
/// `text` (0 for a text without words, 1 when no word follows itself).
///
/// ```
/// use medcap_metrics::repetition::longest_word_run;
/// assert_eq!(longest_word_run("a left chest chest chest."), 3);
/// assert_eq!(longest_word_run("a right lower zone. 0. 0. 0 cm."), 3);
/// assert_eq!(longest_word_run("a left pleural effusion"), 1);
/// assert_eq!(longest_word_run("..."), 0);
/// ```
pub fn longest_word_run(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    let mut previous: Option<String> = None;
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        run = if previous.as_deref() == Some(word.as_str()) {
            run + 1
        } else {
            1
        };
        longest = longest.max(run);
        previous = Some(word);
    }
    longest
}

/// Whether some word of `text` comes `times` times or more in a row.
pub fn repeats_a_word(text: &str, times: usize) -> bool {
    longest_word_run(text) >= times
}

/// The share of `captions` (0 to 1; 0 for none) with a word repeated
/// `times` times or more in a row.
pub fn share_repeating(captions: &[&str], times: usize) -> f64 {
    if captions.is_empty() {
        return 0.0;
    }
    let n = captions.iter().filter(|c| repeats_a_word(c, times)).count();
    n as f64 / captions.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_found_across_punctuation_and_case() {
        assert_eq!(longest_word_run("Chest, chest; CHEST!"), 3);
        assert_eq!(longest_word_run("a b a b a b"), 1);
        assert_eq!(longest_word_run("x x y y y y z"), 4);
        assert_eq!(longest_word_run(""), 0);
        // Within a word is not between words.
        assert_eq!(longest_word_run("cardiomiomiomiom"), 1);
        assert!(repeats_a_word("0. 0. 0. 0", 3));
        assert!(!repeats_a_word("0. 0. 1", 3));
        // Non-ASCII words count as words.
        assert_eq!(longest_word_run("épanchement épanchement"), 2);
    }

    #[test]
    fn share_counts_captions_not_runs() {
        let caps = ["a a a a a a", "b", "c c c", "d d"];
        assert_eq!(share_repeating(&caps, 3), 0.5);
        assert_eq!(share_repeating(&[], 3), 0.0);
    }
}
