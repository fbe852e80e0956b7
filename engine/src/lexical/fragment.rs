//! The fragment of a hit's text a highlight shows: the window of its best matches, cut at
//! spaces on the text itself, marked and HTML-escaped ([`super::highlight`] finds the words).

use std::ops::Range;

use tantivy::snippet::collapse_overlapped_ranges;

use super::highlight::{Word, FRAGMENT_BYTES, POST, PRE};

/// Where `words` matched.
pub(super) fn matched(words: &[Word]) -> Vec<Range<usize>> {
    words.iter().filter(|w| w.weight > 0.0).map(|w| w.at.clone()).collect()
}

/// Bytes a fragment's edge may move outwards to fall on a space rather than inside a word,
/// where no space lies inside the window (a longer word, or a script without spaces, is cut).
pub(super) const SNAP_BYTES: usize = 24;

/// The best fragment of `text`, whose words are `words`, marked, with "…" where it leaves text
/// out; `None` when no word matched. A text of at most [`FRAGMENT_BYTES`] is shown whole.
/// Otherwise the window of the best matches ([`best_fragment`]) is laid on the text itself:
/// [`FRAGMENT_BYTES`] long, its first match [`LEAD_BYTES`] in where the room allows, moved back
/// from the text's end so that a match near it still has a full fragment, and its edges moved
/// to the nearest spaces, so that what the analyzer never made a term (punctuation such as
/// "«" or "(", stop words) is shown and cut as text is.
pub(super) fn fragment(text: &str, words: &[Word]) -> Option<String> {
    let all = matched(words);
    if all.is_empty() {
        return None;
    }
    // Most catalog values are short: shown whole, with no window to search for.
    if text.len() <= FRAGMENT_BYTES {
        return Some(mark(text, 0..text.len(), &all));
    }
    let within = best_fragment(words)?;
    let chosen = matched(&words[within]);
    let span = chosen.iter().map(|r| r.start).min()?..chosen.iter().map(|r| r.end).max()?;
    let (mut start, mut end) = if span.len() >= FRAGMENT_BYTES {
        // One giant word (a 70,000-character token is indexed as pieces of one span): from its
        // start, at most twice a fragment.
        (span.start, span.end.min(span.start + 2 * FRAGMENT_BYTES))
    } else {
        let start = span.start - (FRAGMENT_BYTES - span.len()).min(LEAD_BYTES).min(span.start);
        let end = (start + FRAGMENT_BYTES).min(text.len());
        (start.min(end - FRAGMENT_BYTES), end)
    };
    start = snap_start(text, ceil_char(text, start), span.start);
    end = floor_char(text, end);
    end = snap_end(text, end, span.end.min(end));
    // An edge inside a matched word (a text without spaces is cut anywhere) moves to the
    // word's end or start, so that it is marked whole, not as "<em>กา</em>" of "กาแฟ"; a word
    // longer than that (one giant token) stays cut.
    for word in collapse_overlapped_ranges(&all) {
        if word.start < end && end < word.end && word.end - end <= SNAP_BYTES {
            end = word.end;
        }
        if word.start < start && start < word.end && start - word.start <= SNAP_BYTES {
            start = word.start;
        }
    }
    let marked = mark(text, start..end, &all);
    let before = if text[..start].trim().is_empty() { "" } else { "…" };
    let after = if text[end..].trim().is_empty() { "" } else { "…" };
    Some(format!("{before}{marked}{after}"))
}

/// `start` moved to the start of a word: the text's start when within [`SNAP_BYTES`], else
/// to after a space within [`SNAP_BYTES`] forward (not past `first`, the first match), else
/// back, else to a grapheme boundary where it is (a run without spaces is cut inside, not
/// dropped).
fn snap_start(text: &str, start: usize, first: usize) -> usize {
    if start <= SNAP_BYTES {
        return 0;
    }
    if text[..start].ends_with(char::is_whitespace) {
        return start;
    }
    let ahead = floor_char(text, first.max(start).min(start + SNAP_BYTES));
    if let Some((i, c)) = text[start..ahead].char_indices().find(|(_, c)| c.is_whitespace()) {
        return start + i + c.len_utf8();
    }
    let behind = ceil_char(text, start - SNAP_BYTES);
    match text[behind..start].char_indices().rev().find(|(_, c)| c.is_whitespace()) {
        Some((i, c)) => behind + i + c.len_utf8(),
        None => grapheme_boundary(text, start, true).min(first),
    }
}

/// `end` moved to the end of a word: the text's end when within [`SNAP_BYTES`], else back to a
/// space within [`SNAP_BYTES`] (not before `last`, the last match's end), else forward, else
/// to a grapheme boundary where it is.
fn snap_end(text: &str, end: usize, last: usize) -> usize {
    if text.len() - end <= SNAP_BYTES {
        return text.len();
    }
    if text[end..].starts_with(char::is_whitespace) {
        return end;
    }
    let behind = ceil_char(text, last.min(end).max(end.saturating_sub(SNAP_BYTES)));
    if let Some((i, _)) = text[behind..end].char_indices().rev().find(|(_, c)| c.is_whitespace()) {
        return behind + i;
    }
    let ahead = floor_char(text, end + SNAP_BYTES);
    match text[end..ahead].char_indices().find(|(_, c)| c.is_whitespace()) {
        Some((i, _)) => end + i,
        None => grapheme_boundary(text, end, false).max(last),
    }
}

/// The character boundary at or before `at` (at most the text's length).
fn floor_char(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The character boundary at or after `at` (at most the text's length).
fn ceil_char(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// The grapheme boundary at `at` (a character boundary), else the next one (`forward`) or the
/// one before: so a cut keeps an accent with its letter ("e" and a combining acute) and an
/// emoji sequence whole.
fn grapheme_boundary(text: &str, at: usize, forward: bool) -> usize {
    let mut cursor = unicode_segmentation::GraphemeCursor::new(at, text.len(), true);
    if cursor.is_boundary(text, 0).unwrap_or(true) {
        return at;
    }
    let next = if forward { cursor.next_boundary(text, 0) } else { cursor.prev_boundary(text, 0) };
    next.ok().flatten().unwrap_or(at)
}

/// Bytes of text a fragment shows before its first matched word, where the text has them: a
/// third of a fragment, so that a lone match sits in context rather than at the fragment's end.
const LEAD_BYTES: usize = FRAGMENT_BYTES / 3;

/// The words of the best fragment of a text whose words are `words` (indexes into `words`),
/// or `None` when no word matched. Each window starts at a word and takes the words after it
/// (in the analyzer's order) while they end within [`FRAGMENT_BYTES`] of its start (the first
/// word always); the best has the most weight, the earliest of equals ([`fragment`] lays it
/// on the text). O(words × words per window).
fn best_fragment(words: &[Word]) -> Option<Range<usize>> {
    let mut best: Option<(f32, Range<usize>)> = None;
    for (i, first) in words.iter().enumerate() {
        let start = first.at.start;
        let (mut weight, mut last) = (0.0, i);
        for (j, word) in words.iter().enumerate().skip(i) {
            if j > i && word.at.end.saturating_sub(start) > FRAGMENT_BYTES {
                break;
            }
            weight += word.weight;
            last = j;
        }
        if weight > 0.0 && best.as_ref().is_none_or(|(w, _)| weight > *w) {
            best = Some((weight, i..last + 1));
        }
    }
    best.map(|(_, within)| within)
}

/// `text[within]`, HTML-escaped, with the `matched` ranges (overlapping ones merged; clipped
/// to `within`) between the marks.
pub(super) fn mark(text: &str, within: Range<usize>, matched: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(within.len() + 16);
    let mut at = within.start;
    for range in collapse_overlapped_ranges(matched) {
        let (start, end) = (range.start.max(at), range.end.min(within.end));
        if start >= end {
            continue;
        }
        escape(&mut out, &text[at..start]);
        out.push_str(PRE);
        escape(&mut out, &text[start..end]);
        out.push_str(POST);
        at = end;
    }
    escape(&mut out, &text[at..within.end]);
    out
}

/// Appends `text` with HTML's special characters escaped, so that a catalog's own markup
/// shows as text and only the marks are markup.
fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}
