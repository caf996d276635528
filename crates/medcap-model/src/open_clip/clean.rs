//! open_clip's text cleaning before its Hugging Face tokenizer (`clean =
//! "whitespace"`): `ftfy.fix_text`, `html.unescape` twice, whitespace runs
//! to one space, stripped.
//!
//! Of ftfy's fixes, those that change well-formed text are done: curly
//! quotes to straight ones, Latin ligatures and full-width characters
//! spelled out, control characters removed, NFC. Its repair of mojibake
//! (UTF-8 decoded as Windows-1252 and similar) is not: such text is
//! tokenized as it is.

use unicode_normalization::UnicodeNormalization;

/// `text` as open_clip's `_clean_whitespace` leaves it.
pub fn clean(text: &str) -> String {
    let fixed = fix_text(text);
    let once = html_escape::decode_html_entities(&fixed);
    let twice = html_escape::decode_html_entities(&once);
    // Python's str.split(): Unicode whitespace and the separators U+001C..U+001F.
    twice
        .split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// ftfy's fixes of well-formed text, line by line as ftfy runs them: HTML
/// entities decoded in a line without `<` (its `unescape_html="auto"`),
/// then the character fixes.
fn fix_text(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            if line.contains('<') {
                fix_chars(line)
            } else {
                fix_chars(&html_escape::decode_html_entities(line))
            }
        })
        .collect()
}

/// ftfy's character fixes.
fn fix_chars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            // uncurl_quotes
            '\u{2bc}' | '\u{2018}'..='\u{201b}' => out.push('\''),
            '\u{201c}'..='\u{201f}' => out.push('"'),
            // fix_latin_ligatures
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            '\u{132}' => out.push_str("IJ"),
            '\u{133}' => out.push_str("ij"),
            '\u{149}' => out.push_str("\u{2bc}n"),
            '\u{1c4}' => out.push_str("D\u{17d}"),
            '\u{1c5}' => out.push_str("D\u{17e}"),
            '\u{1c6}' => out.push_str("d\u{17e}"),
            '\u{1c7}' => out.push_str("LJ"),
            '\u{1c8}' => out.push_str("Lj"),
            '\u{1c9}' => out.push_str("lj"),
            '\u{1ca}' => out.push_str("NJ"),
            '\u{1cb}' => out.push_str("Nj"),
            '\u{1cc}' => out.push_str("nj"),
            '\u{1f1}' => out.push_str("DZ"),
            '\u{1f2}' => out.push_str("Dz"),
            '\u{1f3}' => out.push_str("dz"),
            // fix_character_width: the ideographic space and the
            // half-width and full-width forms, by their compatibility form.
            '\u{3000}' => out.push(' '),
            '\u{ff01}'..='\u{ffef}' => out.extend(std::iter::once(c).nfkc()),
            // remove_control_chars
            '\u{0}'..='\u{8}'
            | '\u{b}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffc}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e007f}' => {}
            _ => out.push(c),
        }
    }
    out.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn quotes_ligatures_widths_entities_and_whitespace() {
        assert_eq!(
            clean("  \u{201c}ﬁbrosis\u{201d}\t&amp;amp; ＣＴ\u{3000}it\u{2019}s\n"),
            "\"fibrosis\" & CT it's"
        );
        assert_eq!(clean("e\u{301}"), "\u{e9}");
        assert_eq!(clean("&lt;b&gt; a\u{7}b"), "<b> ab");
        // ftfy decodes once in a line without `<`, then html.unescape twice.
        assert_eq!(clean("&amp;amp;amp;lt;"), "&lt;");
        assert_eq!(clean("<&amp;amp;amp;"), "<&amp;");
    }
}
