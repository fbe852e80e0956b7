//! Steps 3 and 4 for the scripts written without spaces between words: Thai, Lao, Khmer and
//! Myanmar runs cut into words by dictionary, CJK runs paired (see the module above).

use tantivy::tokenizer::Token;

use super::chars::{is_cjk, is_complex_context, normalize};
use super::{push_cut, Revision};

/// Whether a UAX #29 segment is a letter of a script written without spaces (with its marks).
pub(super) fn is_complex_context_segment(segment: &str) -> bool {
    segment.chars().next().is_some_and(is_complex_context)
}

/// Step 3 for a run of Thai, Lao, Khmer or Myanmar (`text[run.0..run.1]`): its words by ICU's
/// dictionary for the script, each normalised as step 1 does (an unknown script's run is
/// cut as ICU cuts it, by grapheme clusters).
pub(super) fn push_words(out: &mut Vec<Token>, text: &str, run: (usize, usize), revision: Revision, dotted_i: bool) {
    static SEGMENTER: std::sync::LazyLock<icu_segmenter::WordSegmenterBorrowed<'static>> =
        std::sync::LazyLock::new(|| icu_segmenter::WordSegmenter::new_dictionary(Default::default()));
    let slice = &text[run.0..run.1];
    let breaks: Vec<usize> = SEGMENTER.segment_str(slice).collect();
    for pair in breaks.windows(2) {
        let word = normalize(&slice[pair[0]..pair[1]], revision, dotted_i);
        if !word.is_empty() {
            push_cut(out, run.0 + pair[0], run.0 + pair[1], &word.chars().collect::<Vec<_>>());
        }
    }
}

/// Step 4: consecutive CJK tokens (adjacent in the text) become overlapping bigrams, and with
/// `unigrams` each character alone too, before its pairs; a lone CJK token stays as it is.
/// Positions are renumbered in order.
pub(super) fn bigrams(tokens: Vec<Token>, unigrams: bool) -> Vec<Token> {
    let cjk = |t: &Token| t.text.chars().all(is_cjk) && !t.text.is_empty();
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut run: Vec<Token> = Vec::new();
    let flush = |run: &mut Vec<Token>, out: &mut Vec<Token>| {
        // Each segment of a run may itself hold several characters (Katakana, Hangul words).
        let chars: Vec<(char, usize, usize)> =
            run.iter().flat_map(|t| t.text.chars().map(move |c| (c, t.offset_from, t.offset_to))).collect();
        if chars.len() == 1 {
            out.push(Token { position: out.len(), ..run[0].clone() });
        } else {
            if unigrams {
                for &(c, from, to) in &chars {
                    let (position, text) = (out.len(), c.to_string());
                    out.push(Token { offset_from: from, offset_to: to, position, text, position_length: 1 });
                }
            }
            for pair in chars.windows(2) {
                out.push(Token {
                    offset_from: pair[0].1,
                    offset_to: pair[1].2,
                    position: out.len(),
                    text: [pair[0].0, pair[1].0].iter().collect(),
                    position_length: 1,
                });
            }
        }
        run.clear();
    };
    for token in tokens {
        let joins = run.last().is_some_and(|last| last.offset_to == token.offset_from);
        if cjk(&token) && (run.is_empty() || joins) {
            run.push(token);
            continue;
        }
        if !run.is_empty() {
            flush(&mut run, &mut out);
        }
        if cjk(&token) {
            run.push(token);
        } else {
            out.push(Token { position: out.len(), ..token });
        }
    }
    if !run.is_empty() {
        flush(&mut run, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{query_terms, terms};
    use super::super::{analyze, Revision};

    #[test]
    fn cjk_runs_become_bigrams_so_a_word_inside_a_run_matches() {
        assert_eq!(query_terms("轻量级帐篷"), ["轻量", "量级", "级帐", "帐篷"]);
        assert_eq!(query_terms("帐篷"), ["帐篷"]);
        assert_eq!(query_terms("帐"), ["帐"]);
        // A long run is indexed (it used to be dropped past 40 bytes): its pairs and its
        // characters.
        let long = "超轻量级双人四季登山露营帐篷防水";
        assert_eq!(query_terms(long).len(), long.chars().count() - 1);
        assert_eq!(terms(long).len(), 2 * long.chars().count() - 1);
        // Mixed scripts: Latin words stay words, kana runs bigram too.
        assert_eq!(query_terms("MSR テント 2人用"), ["msr", "テン", "ント", "2", "人用"]);
        assert_eq!(query_terms("텐트 가방"), ["텐트", "가방"]);
        // The prolonged sound mark is shared by both kana scripts: コーヒー is one run.
        assert_eq!(query_terms("アイスコーヒー"), ["アイ", "イス", "スコ", "コー", "ーヒ", "ヒー"]);
        assert_eq!(query_terms("コーヒー"), ["コー", "ーヒ", "ヒー"]);
    }

    #[test]
    fn cjk_characters_are_indexed_alone_too_and_queries_read_pairs() {
        assert_eq!(terms("轻量级帐篷"), ["轻", "量", "级", "帐", "篷", "轻量", "量级", "级帐", "帐篷"]);
        assert_eq!(query_terms("轻量级帐篷"), ["轻量", "量级", "级帐", "帐篷"], "pairs only");
        // A query of one character meets every run holding it (it met none before).
        assert_eq!(query_terms("鞋"), ["鞋"]);
        assert!(terms("运动鞋 40码").contains(&"鞋".to_string()));
        // A Korean noun with its particle: "책을" holds "책" (book).
        assert_eq!(query_terms("책"), ["책"]);
        assert!(terms("책을 읽다").contains(&"책".to_string()));
        assert_eq!(terms("帐"), ["帐"], "a lone character once");
        // Earlier revisions read items and queries alike, by pairs.
        let (tokens, _) = analyze("轻量级帐篷", Revision::FoldedLetters);
        assert_eq!(tokens.len(), 4);
    }

    #[test]
    fn thai_lao_khmer_and_myanmar_runs_are_cut_into_words() {
        // "Every two weeks" (ICU4X's own example): words, not letters.
        assert_eq!(terms("ทุกสองสัปดาห์"), ["ทุก", "สอง", "สัปดาห์"]);
        // A word inside a run is a term of it: "กาแฟ" (coffee) in "ร้านกาแฟ" (coffee shop).
        assert!(terms("ร้านกาแฟสด").contains(&"กาแฟ".to_string()), "{:?}", terms("ร้านกาแฟสด"));
        assert_eq!(query_terms("กาแฟ"), ["กาแฟ"]);
        // Lao, Khmer and Myanmar have dictionaries too: fewer terms than letters.
        for text in ["ສະບາຍດີ", "សួស្តីពិភពលោក", "မင်္ဂလာပါ"]
        {
            let letters = text.chars().filter(|c| !unicode_normalization::char::is_combining_mark(*c)).count();
            assert!(terms(text).len() < letters, "{text}: {:?}", terms(text));
            assert_eq!(terms(text).concat(), text, "{text}: every letter in one word");
        }
        // Runs end at spaces, other scripts and punctuation; offsets are the text's.
        let (tokens, _) = analyze("MSR เต็นท์, 2 คน", Revision::default());
        let words: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(words, ["msr", "เต็นท์", "2", "คน"]);
        assert_eq!(&"MSR เต็นท์, 2 คน"[tokens[1].offset_from..tokens[1].offset_to], "เต็นท์");
        // Earlier revisions keep their letter-by-letter terms.
        let (old, _) = analyze("กาแฟ", Revision::FoldedLetters);
        assert_eq!(old.len(), 4);
    }
}
