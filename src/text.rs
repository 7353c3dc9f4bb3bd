//! Unicode tokenizing and case folding shared by the rule matcher and the
//! snippet cutter.
//!
//! Words are UAX #29 word segments that contain a letter or digit; each is
//! folded with [`fold`] so that matching is case- and accent-insensitive in
//! every script. Offsets are always Unicode scalar value (char) indices into
//! the original text. Pure functions: this module does no I/O.

use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// One word of a text. Char offsets are Unicode scalar value indices into the
/// original text; `folded` is [`fold`] of the original word.
///
/// Possessives keep their apostrophe: "Kursk’s" is one token folded to
/// `kursk's`. The rule matcher (not the tokenizer) lets a token ending in
/// `'s` match a term ending in the stem.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub folded: String,
}

/// Case folds and normalises one word.
///
/// Lowercases char-wise with full Unicode mappings (Turkish `İ` and dotless
/// `ı` both become `i`), maps `ё`/`Ё` to `е`, final sigma `ς` to `σ`, curly
/// apostrophes (`’ ‘ ʼ`) to `'`, and strips combining accents (the generic
/// diacritic blocks, after NFD) except on Cyrillic letters, so `й` stays `й`
/// while `Café` becomes `cafe`. The result is NFC.
pub fn fold(word: &str) -> String {
    if word.is_ascii() {
        // Fast path: ASCII has no accents or special mappings.
        return word.to_ascii_lowercase();
    }
    let lower: String = word
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'ı' => 'i',
            'ё' => 'е',
            'ς' => 'σ',
            '’' | '‘' | 'ʼ' => '\'',
            c => c,
        })
        .collect();
    let mut out = String::with_capacity(lower.len());
    let mut base: Option<char> = None;
    for c in lower.nfd() {
        if !is_accent(c) {
            base = Some(c);
            out.push(c);
        } else if let Some(b) = base.filter(|&b| is_cyrillic(b)) {
            // Decomposed ё (е + diaeresis) folds like the precomposed one.
            if !(b == 'е' && c == '\u{308}') {
                out.push(c);
            }
        }
    }
    out.nfc().collect()
}

/// The stemmer a folded word goes through: chosen by the script of its
/// first letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Snowball English.
    Latin,
    /// Snowball Russian.
    Cyrillic,
    /// Digits only, or another script: not stemmed.
    Other,
}

/// The script of the first letter of `word`.
pub fn script(word: &str) -> Script {
    match word.chars().find(|c| c.is_alphabetic()) {
        Some(c) if is_cyrillic(c) => Script::Cyrillic,
        Some(c) if is_latin(c) => Script::Latin,
        _ => Script::Other,
    }
}

/// Stems an already [`fold`]ed word by its script: Snowball English for
/// Latin, Snowball Russian for Cyrillic, unchanged otherwise. Matching
/// compares the stems of query words and document tokens, so both go
/// through this one function: `deminers` and `demining` both give `demin`,
/// `курской` and `Курск` both give `курск`, and `Kursk’s` gives `kursk`.
pub fn stem(folded: &str) -> String {
    use rust_stemmers::{Algorithm, Stemmer};
    use std::sync::OnceLock;
    static EN: OnceLock<Stemmer> = OnceLock::new();
    static RU: OnceLock<Stemmer> = OnceLock::new();
    let stemmer = match script(folded) {
        Script::Latin => EN.get_or_init(|| Stemmer::create(Algorithm::English)),
        Script::Cyrillic => RU.get_or_init(|| Stemmer::create(Algorithm::Russian)),
        Script::Other => return folded.to_string(),
    };
    let stemmed = stemmer.stem(folded);
    if stemmed.is_empty() {
        folded.to_string()
    } else {
        stemmed.into_owned()
    }
}

/// [`fold`] then [`stem`].
pub fn fold_stem(word: &str) -> String {
    stem(&fold(word))
}

/// Splits `text` into UAX #29 words that contain a letter or digit, folded,
/// with char offsets into `text`. Punctuation, whitespace and emoji are not
/// tokens. Runs in one pass over the text.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut cursor = CharCursor::new(text);
    text.unicode_word_indices()
        .filter_map(|(byte, word)| {
            let folded = fold(word);
            // A lone combining letter folds to nothing: not a word.
            let start = cursor.char_at(byte);
            (!folded.is_empty()).then(|| Token {
                start,
                end: start + word.chars().count(),
                folded,
            })
        })
        .collect()
}

/// Converts byte offsets into char offsets; linear overall when the byte
/// offsets are queried in ascending order.
pub(crate) struct CharCursor<'a> {
    text: &'a str,
    byte: usize,
    chars: usize,
}

impl<'a> CharCursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        CharCursor {
            text,
            byte: 0,
            chars: 0,
        }
    }

    /// Char offset of `byte`; an offset inside a char or past the end is
    /// rounded down to the previous char boundary.
    pub(crate) fn char_at(&mut self, byte: usize) -> usize {
        let mut byte = byte.min(self.text.len());
        while !self.text.is_char_boundary(byte) {
            byte -= 1;
        }
        if byte < self.byte {
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self.text[self.byte..byte].chars().count();
        self.byte = byte;
        self.chars
    }
}

/// Combining diacritics that folding removes (outside Cyrillic). Script
/// specific marks (Devanagari vowel signs, Arabic harakat, ...) are kept.
fn is_accent(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c,
            '\u{00C0}'..='\u{024F}'
            | '\u{1E00}'..='\u{1EFF}'
            | '\u{2C60}'..='\u{2C7F}'
            | '\u{A720}'..='\u{A7FF}'
            | '\u{FF21}'..='\u{FF3A}'
            | '\u{FF41}'..='\u{FF5A}')
            && c != '\u{00D7}'
            && c != '\u{00F7}'
}

pub(crate) fn is_cyrillic(c: char) -> bool {
    matches!(c,
        '\u{0400}'..='\u{052F}'
        | '\u{1C80}'..='\u{1C8F}'
        | '\u{2DE0}'..='\u{2DFF}'
        | '\u{A640}'..='\u{A69F}'
        | '\u{1E030}'..='\u{1E08F}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn folded(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|t| t.folded).collect()
    }

    #[test]
    fn turkish_dotted_and_dotless_i() {
        assert_eq!(fold("İSTANBUL"), "istanbul");
        assert_eq!(fold("Diyarbakır"), "diyarbakir");
    }

    #[test]
    fn yo_folds_to_ye() {
        assert_eq!(fold("Ёлка"), fold("елка"));
        assert_eq!(fold("Королёв"), "королев");
        // Decomposed ё (е + U+0308) too.
        assert_eq!(fold("Короле\u{308}в"), "королев");
    }

    #[test]
    fn latin_accents_stripped() {
        assert_eq!(fold("Café"), "cafe");
        assert_eq!(fold("Cafe\u{301}"), "cafe");
        assert_eq!(fold("ZELENSKÝ"), "zelensky");
        assert_eq!(fold("Ἀθῆναι"), "αθηναι");
    }

    #[test]
    fn cyrillic_short_i_kept() {
        assert_eq!(fold("ВОЙНА"), "война");
        assert_eq!(fold("й"), "й");
        assert_ne!(fold("й"), fold("и"));
        // Decomposed й recomposes.
        assert_eq!(fold("и\u{306}"), "й");
    }

    #[test]
    fn stems_by_script() {
        assert_eq!(fold_stem("Deminers"), "demin");
        assert_eq!(fold_stem("demining"), "demin");
        assert_eq!(fold_stem("mining"), "mine");
        assert_eq!(fold_stem("Kursk’s"), "kursk");
        assert_eq!(fold_stem("Курской"), "курск");
        assert_eq!(fold_stem("курске"), "курск");
        assert_eq!(fold_stem("Королёв"), fold_stem("королев"));
        assert_eq!(fold_stem("北朝鲜"), "北朝鲜");
        assert_eq!(fold_stem("2024"), "2024");
        assert_eq!(script("2024th"), Script::Latin);
        assert_eq!(script("Ёж"), Script::Cyrillic);
        assert_eq!(script("×"), Script::Other);
    }

    #[test]
    fn ascii_fast_path_agrees() {
        for w in ["Kursk's", "U.S", "ABC123", "it's"] {
            assert_eq!(fold(w), w.to_lowercase());
        }
    }

    #[test]
    fn greek_final_sigma() {
        assert_eq!(fold("ΟΔΥΣΣΕΥΣ"), fold("Οδυσσεύς"));
    }

    #[test]
    fn curly_apostrophes_fold_and_stay_in_token() {
        assert_eq!(fold("Kursk’s"), "kursk's");
        assert_eq!(
            folded("Kursk’s governor and O'Brien's aide"),
            ["kursk's", "governor", "and", "o'brien's", "aide"]
        );
        assert_eq!(folded("Kursk's"), folded("KURSKʼS"));
    }

    #[test]
    fn punctuation_and_emoji_are_not_tokens() {
        assert_eq!(folded("— 🔥 … «Курск»!"), ["курск"]);
        assert!(tokenize("  ,;— ").is_empty());
        // A stray combining letter is alphabetic but folds to nothing.
        assert!(tokenize("\u{1acc}𝈀").is_empty());
    }

    #[test]
    fn char_offsets_in_mixed_scripts() {
        let text = "🇺🇦 Удар по Курску 🔥: 北朝鲜 troops, Café—KURSK’s 2024 résumé";
        let tokens = tokenize(text);
        let originals: Vec<String> = tokens
            .iter()
            .map(|t| text.chars().skip(t.start).take(t.end - t.start).collect())
            .collect();
        assert_eq!(
            originals,
            [
                "Удар",
                "по",
                "Курску",
                "北",
                "朝",
                "鲜",
                "troops",
                "Café",
                "KURSK’s",
                "2024",
                "résumé"
            ]
        );
        for (t, original) in tokens.iter().zip(&originals) {
            assert_eq!(t.folded, fold(original));
        }
    }

    #[test]
    fn cursor_handles_backwards_and_bad_offsets() {
        let mut c = CharCursor::new("ёж и ёлка");
        assert_eq!(c.char_at(5), 3);
        assert_eq!(c.char_at(2), 1);
        assert_eq!(c.char_at(1), 0); // inside 'ё': rounds down
        assert_eq!(c.char_at(99), 9); // past the end: clamps
    }

    proptest! {
        #[test]
        fn tokenize_never_panics(text in any::<String>()) {
            let n = text.chars().count();
            let mut prev_end = 0;
            for t in tokenize(&text) {
                prop_assert!(prev_end <= t.start && t.start < t.end && t.end <= n);
                prop_assert!(!t.folded.is_empty());
                prev_end = t.end;
            }
        }
    }
}
