//! Steps 3 and 4 for the scripts written without spaces between words: Thai, Lao, Khmer and
//! Myanmar runs cut into words by dictionary, CJK runs paired (see the module above).

use tantivy::tokenizer::Token;
use unicode_segmentation::UnicodeSegmentation;

use super::chars::{is_cjk, is_complex_context, normalize};
use super::{push_cut, Revision, MAX_TOKEN_CHARS};

/// Whether a UAX #29 segment is a letter of a script written without spaces (with its marks).
pub(super) fn is_complex_context_segment(segment: &str) -> bool {
    segment.chars().next().is_some_and(is_complex_context)
}

/// Step 3 for a run of Thai, Lao, Khmer or Myanmar (`text[run.0..run.1]`): its words by ICU's
/// dictionary for the script, each normalised as step 1 does (an unknown script's run is
/// cut as ICU cuts it). A word's repetition or abbreviation mark goes ([`is_word_mark`]:
/// "ต่างๆ" is "ต่าง", "กรุงเทพฯ" "กรุงเทพ"), and a piece without a letter (punctuation) is no
/// term. Returns how many words were past [`MAX_TOKEN_CHARS`], as step 5 counts them.
pub(super) fn push_words(
    out: &mut Vec<Token>,
    text: &str,
    run: (usize, usize),
    revision: Revision,
    dotted_i: bool,
) -> usize {
    // The dictionary reads the run without its zero-width spaces, which writers of Khmer and
    // Thai put between some words and not others: "ស្បែក\u{200B}ជើង" is cut as "ស្បែកជើង" (shoe),
    // which a query typed without them is. Where the run has some, the pieces between them are
    // cut too, so the writer's own breaks still find "ជើង".
    let mut words = dictionary_words(text, run);
    if text[run.0..run.1].contains(ZERO_WIDTH_SPACE) {
        let mut from = run.0;
        for (at, _) in text[run.0..run.1].match_indices(ZERO_WIDTH_SPACE).chain([(run.1 - run.0, "")]) {
            words.extend(dictionary_words(text, (from, run.0 + at)));
            from = run.0 + at + ZERO_WIDTH_SPACE.len_utf8();
        }
        // In the text's order, a word both cuts found once.
        words.sort_unstable();
        words.dedup();
    }
    let mut long = 0;
    for (from, to) in words {
        let word = normalize(&text[from..to], revision, dotted_i).replace(ZERO_WIDTH_SPACE, "");
        let chars: Vec<char> = word.trim_end_matches(is_word_mark).chars().collect();
        if chars.iter().any(|c| c.is_alphanumeric()) {
            long += usize::from(chars.len() > MAX_TOKEN_CHARS);
            push_cut(out, from, to, &chars);
        }
    }
    long
}

/// The words ICU's dictionary cuts `text[range.0..range.1]` into, read without its zero-width
/// spaces, as byte ranges of `text` (a word's range ends at its last character, not at a
/// zero-width space after it).
fn dictionary_words(text: &str, range: (usize, usize)) -> Vec<(usize, usize)> {
    static SEGMENTER: std::sync::LazyLock<icu_segmenter::WordSegmenterBorrowed<'static>> =
        std::sync::LazyLock::new(|| icu_segmenter::WordSegmenter::new_dictionary(Default::default()));
    // `at[i]` is where byte `i` of `clean` is in `text`.
    let (mut clean, mut at) = (String::with_capacity(range.1 - range.0), Vec::with_capacity(range.1 - range.0));
    for (i, c) in text[range.0..range.1].char_indices().filter(|&(_, c)| c != ZERO_WIDTH_SPACE) {
        clean.push(c);
        at.extend((0..c.len_utf8()).map(|k| range.0 + i + k));
    }
    let breaks: Vec<usize> = SEGMENTER.segment_str(&clean).collect();
    breaks.windows(2).filter(|pair| pair[1] > pair[0]).map(|pair| (at[pair[0]], at[pair[1] - 1] + 1)).collect()
}

/// U+200B, which separates words without showing a space.
pub(super) const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// Marks written after a word that are no part of it: the repetition marks of Thai (ๆ), Lao
/// (ໆ) and Khmer (ៗ), which repeat the word before them, and Thai's and Lao's abbreviation
/// marks (ฯ, ຯ). They are letters to Unicode, so no earlier step drops them.
fn is_word_mark(c: char) -> bool {
    matches!(c, '\u{0E46}' | '\u{0EC6}' | '\u{17D7}' | '\u{0E2F}' | '\u{0EAF}')
}

/// Step 4: consecutive CJK tokens (adjacent in the text) become overlapping bigrams, and with
/// `unigrams` each character alone too, just before the pair it begins (so tokens stay in the
/// text's order, which the highlighter's fragments rely on); a lone CJK token stays as it is.
/// Positions are renumbered in order. A character's offsets are its grapheme's in `text` where
/// the segment has one grapheme per character of the term, else the segment's.
pub(super) fn bigrams(tokens: Vec<Token>, unigrams: bool, text: &str) -> Vec<Token> {
    let cjk = |t: &Token| t.text.chars().all(is_cjk) && !t.text.is_empty();
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut run: Vec<Token> = Vec::new();
    let flush = |run: &mut Vec<Token>, out: &mut Vec<Token>| {
        // Each segment of a run may itself hold several characters (Katakana, Hangul words).
        let mut chars: Vec<(char, usize, usize)> = Vec::new();
        for t in run.iter() {
            // Character i of the term is grapheme i of the text where their counts agree (text
            // as written, decomposed Hangul, half-width kana); else the segment is one unit (an
            // emoji with its modifier, a part of a longer word).
            let written = text.get(t.offset_from..t.offset_to).unwrap_or_default();
            let graphemes: Vec<(usize, &str)> = written.grapheme_indices(true).collect();
            let apart = graphemes.len() == t.text.chars().count();
            for (i, c) in t.text.chars().enumerate() {
                chars.push(match apart {
                    true => (c, t.offset_from + graphemes[i].0, t.offset_from + graphemes[i].0 + graphemes[i].1.len()),
                    false => (c, t.offset_from, t.offset_to),
                });
            }
        }
        if chars.len() == 1 {
            out.push(Token { position: out.len(), ..run[0].clone() });
        } else {
            for (i, &(c, from, to)) in chars.iter().enumerate() {
                if unigrams {
                    let (position, text) = (out.len(), c.to_string());
                    out.push(Token { offset_from: from, offset_to: to, position, text, position_length: 1 });
                }
                if let Some(&(next, _, next_to)) = chars.get(i + 1) {
                    out.push(Token {
                        offset_from: from,
                        offset_to: next_to,
                        position: out.len(),
                        text: [c, next].iter().collect(),
                        position_length: 1,
                    });
                }
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
        assert_eq!(terms("轻量级帐篷"), ["轻", "轻量", "量", "量级", "级", "级帐", "帐", "帐篷", "篷"]);
        assert_eq!(query_terms("轻量级帐篷"), ["轻量", "量级", "级帐", "帐篷"], "pairs only");
        // A query of one character meets every run holding it (it met none before).
        assert_eq!(query_terms("鞋"), ["鞋"]);
        assert!(terms("运动鞋 40码").contains(&"鞋".to_string()));
        // A Korean noun with its particle: "책을" holds "책" (book).
        assert_eq!(query_terms("책"), ["책"]);
        assert!(terms("책을 읽다").contains(&"책".to_string()));
        assert_eq!(terms("帐"), ["帐"], "a lone character once");
        // In the text's order, each character with its own offsets where the text holds it as
        // written (the highlighter marks "책" of "책을", not the whole word).
        let text = "운동화 책을 ｶﾞ";
        let (tokens, _) = analyze(text, Revision::default());
        let marked: Vec<(&str, &str)> =
            tokens.iter().map(|t| (t.text.as_str(), &text[t.offset_from..t.offset_to])).collect();
        assert_eq!(marked[..5], [("운", "운"), ("운동", "운동"), ("동", "동"), ("동화", "동화"), ("화", "화")]);
        assert_eq!(marked[5..8], [("책", "책"), ("책을", "책을"), ("을", "을")]);
        // Half-width kana and decomposed Hangul, which step 1 rewrites: grapheme by grapheme.
        assert_eq!(marked[8..], [("ガ", "ｶﾞ")]);
        let text = "ｺｰﾋｰ \u{1100}\u{1161}\u{11A8}\u{110B}\u{1173}\u{11AF}";
        let (tokens, _) = analyze(text, Revision::default());
        let marked: Vec<(&str, &str)> =
            tokens.iter().map(|t| (t.text.as_str(), &text[t.offset_from..t.offset_to])).collect();
        assert_eq!(marked[0], ("コ", "ｺ"));
        assert_eq!(marked[2], ("ー", "ｰ"));
        assert_eq!(marked[7], ("각", "\u{1100}\u{1161}\u{11A8}"));
        // An emoji with its skin tone is one grapheme of two characters: never cut apart.
        let text = "👍🏽";
        let (tokens, _) = analyze(text, Revision::default());
        assert!(tokens.iter().all(|t| (t.offset_from, t.offset_to) == (0, text.len())), "{tokens:?}");
        assert!(tokens.windows(2).all(|w| w[0].offset_from <= w[1].offset_from), "{tokens:?}");
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
        // Zero-width spaces inside a run are not read: the dictionary cuts the run.
        assert_eq!(terms("ស្បែក\u{200B}ជើង"), ["ស្បែក", "ស្បែកជើង", "ជើង"]);
        assert_eq!(query_terms("ស្បែកជើង"), ["ស្បែកជើង"]);
        let text = "กาแฟ\u{200B}สด ok";
        let (tokens, _) = analyze(text, Revision::default());
        let marked: Vec<&str> = tokens.iter().map(|t| &text[t.offset_from..t.offset_to]).collect();
        assert_eq!(marked, ["กาแฟ", "สด", "ok"]);
        // The writer's own break still finds the word after it, and the whole word is found.
        let khmer = terms("ស្បែក\u{200B}ជើង");
        assert!(terms("ជើង").iter().all(|t| khmer.contains(t)), "{khmer:?}");
        // Repetition and abbreviation marks are no part of a word; punctuation is no word.
        assert_eq!(terms("ต่างๆ"), terms("ต่าง"));
        assert_eq!(terms("กรุงเทพฯ"), terms("กรุงเทพ"));
        assert!(terms("ๆ ฯ").is_empty());
        // Thai digits are digits: "๒๕๖๗" is the year 2567.
        assert_eq!(terms("รุ่นปี ๒๕๖๗"), [terms("รุ่นปี"), vec!["2567".to_string()]].concat());
        // Earlier revisions keep their letter-by-letter terms.
        let (old, _) = analyze("กาแฟ", Revision::FoldedLetters);
        assert_eq!(old.len(), 4);
    }
}
