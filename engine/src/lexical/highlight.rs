//! Highlights: where a query's terms occur in a hit's title and text, marked for display.
//!
//! The terms are the query's after each field's own analysis, and an item's words are
//! analysed the same way, so a highlight marks what BM25 matched in the title and the text:
//! "tents" for the query "tent" (one stem), "Café" for "cafe" (diacritics folded), "帐篷"
//! inside "轻量级帐篷" (CJK bigrams). Catalog fields BM25 also searches (`search_fields`) are
//! highlighted under their own analysis: each text value that matched, whole (cut to a
//! fragment as the text is when longer than [`FRAGMENT_BYTES`]); a number, indexed as its
//! text, is a number to show and is not marked.
//!
//! A text of at most [`FRAGMENT_BYTES`] is shown whole. A longer one is cut to the window
//! whose matched words weigh most, each by 1 / (1 + its document frequency), as tantivy's
//! `SnippetGenerator` weighs them. Ours slides the window word by word where tantivy's cuts the
//! text into consecutive windows, and it takes the analyzer's tokens in any order: a joined
//! word ("T-Shirt" as "tshirt") comes after its parts and starts before them, which tantivy's
//! fragments assume never happens. The window chosen, it is laid on the text itself and cut at
//! spaces, not at terms: punctuation ("«", "(") and stop words are no terms, and a fragment
//! cut at terms lost them.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tantivy::schema::Field;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::Term;

use super::fragment::{fragment, mark, matched};
use super::LexicalIndex;
use crate::error::Result;
use crate::item::{FieldValue, Item};

/// Bytes of text a fragment holds at most, between whole words: tantivy's default (150).
pub const FRAGMENT_BYTES: usize = 150;

/// Marks around each matched word, as Elasticsearch's default highlighter writes them.
pub(super) const PRE: &str = "<em>";
pub(super) const POST: &str = "</em>";

/// A hit's highlights: HTML-escaped text with each word the query matched inside `<em>` and
/// `</em>`. A field the query matched nothing in is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Highlights {
    /// The whole title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The text's best fragment, about 150 bytes cut at word boundaries, with
    /// "…" where it leaves text out before or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The catalog fields BM25 searches (`search_fields`) that matched, by name: the values
    /// that matched, in the item's order (a text field's one value, a list field's each),
    /// whole up to 150 bytes and cut to their best fragment past it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Vec<String>>,
}

impl Highlights {
    /// Whether no field matched.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.text.is_none() && self.fields.is_empty()
    }
}

/// A query's highlighter, made once per request: the query's terms after the title's, the
/// text's and each searched catalog field's analysis, with each term's weight.
pub struct Highlighter {
    title: FieldTerms,
    text: FieldTerms,
    /// The searched catalog fields, by name, where the query has terms under their analysis.
    catalog: Vec<(String, FieldTerms)>,
    /// Time spent so far: making the highlighter, then in [`Highlighter::highlight`] (the
    /// request's `highlight_ms`).
    spent: Cell<Duration>,
}

/// One field's analyzer and the query's terms under it, each with its weight.
struct FieldTerms {
    analyzer: TextAnalyzer,
    weights: HashMap<String, f32>,
    /// The numbers the query writes only after letters ([`super::terms`]), each with the
    /// query's words it does so in: marked only in an item holding a lettered term of one.
    dependent: HashMap<String, Vec<u32>>,
    /// The query's lettered terms, each with the query's words it is read from.
    lettered: HashMap<String, Vec<u32>>,
}

/// A word of an item's field: where it is, and its weight when it is a query term (else 0).
pub(super) struct Word {
    pub at: Range<usize>,
    pub weight: f32,
    /// The query term it is, when it is one.
    term: Option<String>,
}

impl LexicalIndex {
    /// The highlighter for `query`.
    ///
    /// # Errors
    /// A field's analyzer missing from the index (a generation opened without it is refused
    /// earlier), or a failing index read.
    pub fn highlighter(&self, query: &str) -> Result<Highlighter> {
        self.highlighter_with(query, self.settings.bm25)
    }

    /// [`LexicalIndex::highlighter`] under a request's BM25 parameters: the terms a word no
    /// item holds was read as (`super::fuzzy`), and those the last word was completed to
    /// (`super::prefix`), are marked as BM25 matched them.
    ///
    /// # Errors
    /// As [`LexicalIndex::highlighter`]; a prefix on a generation without its words.
    pub fn highlighter_with(&self, query: &str, params: super::Bm25Params) -> Result<Highlighter> {
        let start = Instant::now();
        let searcher = self.reader.searcher();
        // The query's terms as the scorer reads them (typos expanded alike); a field's are
        // those looked up in it.
        let read = self.with_visible(params, |visible| self.query_terms(query, params, visible))?;
        let read = |field: Field| -> Result<Vec<super::QueryTerm>> {
            let bit = self.fields.searched.iter().position(|s| s.field == field).map_or(0, |f| 1u64 << f);
            Ok(read.iter().filter(|(_, mask)| mask & bit != 0).map(|(t, _)| t.clone()).collect())
        };
        let terms = |field: Field| -> Result<FieldTerms> {
            let mut weights = HashMap::new();
            let terms = read(field)?;
            let (mut dependent, mut lettered) =
                (HashMap::<String, Vec<u32>>::new(), HashMap::<String, Vec<u32>>::new());
            for term in &terms {
                let map = if term.dependent {
                    &mut dependent
                } else if term.lettered {
                    &mut lettered
                } else {
                    continue;
                };
                map.entry(term.text.clone()).or_default().push(term.word);
            }
            // A number the query also writes alone counts wherever it occurs.
            dependent.retain(|text, _| !terms.iter().any(|t| !t.dependent && t.text == *text));
            let tokens: Vec<String> = terms.into_iter().map(|t| t.text).collect();
            // A symbol the analyzer keeps as a term counts for BM25. A mathematical or modifier
            // symbol ("<", "+", "=", "^") is mostly markup or an operator typed around words, and
            // marking every one in a text is noise: marked only when the query holds nothing
            // else. A currency or other symbol ("€", "★", "✓", "☕") carries meaning, and is
            // marked as a word is.
            use unicode_categories::UnicodeCategories;
            let operator = |t: &String| t.chars().all(|c| c.is_symbol_math() || c.is_symbol_modifier());
            let any_other = tokens.iter().any(|t| !operator(t));
            for token in tokens.into_iter().filter(|t| !any_other || !operator(t)) {
                // A term only live items hold has no frequency here; it still marks.
                let frequency = searcher.doc_freq(&Term::from_field_text(field, &token))?;
                weights.insert(token, 1.0 / (1.0 + frequency as f32));
            }
            Ok(FieldTerms { analyzer: self.index.tokenizer_for_field(field)?, weights, dependent, lettered })
        };
        let mut catalog = Vec::new();
        for searched in self.fields.catalog() {
            let terms = terms(searched.field)?;
            if !terms.weights.is_empty() {
                catalog.push((searched.name.clone(), terms));
            }
        }
        Ok(Highlighter {
            title: terms(self.fields.title())?,
            text: terms(self.fields.text())?,
            catalog,
            spent: Cell::new(start.elapsed()),
        })
    }
}

impl FieldTerms {
    /// The words of `text`, in the analyzer's order.
    fn words(&self, text: &str) -> Vec<Word> {
        if self.weights.is_empty() {
            return Vec::new();
        }
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut words = Vec::new();
        while stream.advance() {
            let token = stream.token();
            let weight = self.weights.get(&token.text).copied().unwrap_or(0.0);
            let term = (weight > 0.0).then(|| token.text.clone());
            words.push(Word { at: token.offset_from..token.offset_to, weight, term });
        }
        words
    }
}

impl Highlighter {
    /// Time spent so far, making the highlighter and marking items.
    pub fn spent(&self) -> Duration {
        self.spent.get()
    }

    /// `item`'s highlights.
    pub fn highlight(&self, item: &Item) -> Highlights {
        let start = Instant::now();
        let highlights = self.highlight_fields(item);
        self.spent.set(self.spent.get() + start.elapsed());
        highlights
    }

    fn highlight_fields(&self, item: &Item) -> Highlights {
        let mut title = self.title.words(&item.title);
        let mut text = self.text.words(&item.text);
        let mut catalog: Vec<(&String, &FieldTerms, Vec<(&String, Vec<Word>)>)> = Vec::new();
        for (name, terms) in &self.catalog {
            let values: &[String] = match item.fields.get(name) {
                Some(FieldValue::Text(value)) => std::slice::from_ref(value),
                Some(FieldValue::List(values)) => values,
                Some(FieldValue::Number(_)) | None => &[],
            };
            catalog.push((name, terms, values.iter().map(|value| (value, terms.words(value))).collect()));
        }
        // A number written after letters in the query is marked only where BM25 counted it: in
        // an item holding a lettered term of its word, in any field.
        if [&self.title, &self.text]
            .into_iter()
            .chain(self.catalog.iter().map(|c| &c.1))
            .any(|t| !t.dependent.is_empty())
        {
            let mut held = HashSet::new();
            self.title.hold(&title, &mut held);
            self.text.hold(&text, &mut held);
            for (_, terms, values) in &catalog {
                values.iter().for_each(|(_, words)| terms.hold(words, &mut held));
            }
            self.title.unmark_unneeded(&mut title, &held);
            self.text.unmark_unneeded(&mut text, &held);
            for (_, terms, values) in &mut catalog {
                values.iter_mut().for_each(|(_, words)| terms.unmark_unneeded(words, &held));
            }
        }
        let mut fields = BTreeMap::new();
        for (name, _, values) in catalog {
            let marked: Vec<String> = values.iter().filter_map(|(value, words)| fragment(value, words)).collect();
            if !marked.is_empty() {
                fields.insert(name.clone(), marked);
            }
        }
        let title = matched(&title);
        Highlights {
            title: (!title.is_empty()).then(|| mark(&item.title, 0..item.title.len(), &title)),
            text: fragment(&item.text, &text),
            fields,
        }
    }
}

impl FieldTerms {
    /// Adds to `held` the query's words whose lettered terms `words` hold.
    fn hold(&self, words: &[Word], held: &mut HashSet<u32>) {
        for word in words {
            if let Some(of) = word.term.as_ref().and_then(|t| self.lettered.get(t)) {
                held.extend(of.iter().copied());
            }
        }
    }

    /// Unmarks the numbers of `words` that count only beside letters of a query word the item
    /// holds none of (`held`: the query words the item's fields hold lettered terms of).
    fn unmark_unneeded(&self, words: &mut [Word], held: &HashSet<u32>) {
        for word in words {
            let of = word.term.as_ref().and_then(|t| self.dependent.get(t));
            if of.is_some_and(|of| !of.iter().any(|w| held.contains(w))) {
                word.weight = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;
    use crate::lexical::fragment::SNAP_BYTES;
    use crate::lexical::{Analyzer, LexicalSettings, SearchField};

    fn item(title: &str, text: &str) -> Item {
        Item { id: "i".into(), title: title.into(), text: text.into(), fields: Default::default() }
    }

    fn index(dir: &Path, settings: LexicalSettings, items: &[Item]) -> LexicalIndex {
        LexicalIndex::build(dir, items.iter().enumerate().map(|(i, it)| (i as u32, it)), settings.clone()).unwrap();
        LexicalIndex::open(dir, settings).unwrap()
    }

    /// The text without the marks and with HTML's escapes read back: what the highlight shows.
    fn shown(marked: &str) -> String {
        let plain = marked.replace(PRE, "").replace(POST, "");
        plain
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    /// A number the query writes after letters is marked only where BM25 counts it: in an item
    /// that also holds a lettered term of its word, in any field; written alone too, or after
    /// another word's letters the item holds, it is marked.
    #[test]
    fn a_number_written_after_letters_is_marked_beside_them() {
        let items = [item("Stage 1 trial", "One arm, 1 drug."), item("PD progression", "A trial of 1 drug.")];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        let highlight = |query: &str, i: usize| lexical.highlighter(query).unwrap().highlight(&items[i]);
        assert_eq!(highlight("PD1", 0), Highlights::default(), "a lone 1 is not the query's");
        let pd = highlight("PD1", 1);
        assert_eq!(pd.title.as_deref(), Some("<em>PD</em> progression"));
        assert_eq!(pd.text.as_deref(), Some("A trial of <em>1</em> drug."), "the title holds pd");
        assert_eq!(highlight("pd 1", 0).text.as_deref(), Some("One arm, <em>1</em> drug."));
        assert_eq!(highlight("PD1 stage 1", 0).title.as_deref(), Some("<em>Stage</em> <em>1</em> trial"));
        assert_eq!(highlight("CD1 PD1", 1).text.as_deref(), Some("A trial of <em>1</em> drug."));
    }

    /// A word no item holds is marked where BM25 read it as a word a typo away, and only under
    /// typo tolerance.
    #[test]
    fn a_typo_marks_the_word_it_was_read_as() {
        let items = [item("Sleeping bag", "Warm down, for sleeping out.")];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        let marked = lexical.highlighter("sleping bag").unwrap().highlight(&items[0]);
        assert_eq!(marked.title.as_deref(), Some("<em>Sleeping</em> <em>bag</em>"));
        assert_eq!(marked.text.as_deref(), Some("Warm down, for <em>sleeping</em> out."));
        let off = super::super::Bm25Params { fuzziness: super::super::Fuzziness::Off, ..Default::default() };
        let typed = lexical.highlighter_with("sleping bag", off).unwrap().highlight(&items[0]);
        assert_eq!(typed.title.as_deref(), Some("Sleeping <em>bag</em>"));
    }

    /// A word being typed marks the words it was completed to, under `prefix` only.
    #[test]
    fn a_beginning_marks_the_words_it_completes_to() {
        let items = [item("Hiking boots", "For long hikes.")];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        let last = super::super::Bm25Params { prefix: super::super::Prefix::Last, ..Default::default() };
        let marked = lexical.highlighter_with("boots hik", last).unwrap().highlight(&items[0]);
        assert_eq!(marked.title.as_deref(), Some("<em>Hiking</em> <em>boots</em>"));
        assert_eq!(marked.text.as_deref(), Some("For long <em>hikes</em>."), "the stem hiking is read as");
        let typed = lexical.highlighter("boots hik").unwrap().highlight(&items[0]);
        assert_eq!(typed.title.as_deref(), Some("Hiking <em>boots</em>"));
    }

    /// Words are marked as BM25 matches them, in every language the analyzer reads, and the
    /// catalog's own markup is escaped.
    #[test]
    fn words_are_marked_as_bm25_matches_them() {
        let items = [
            item("Ultralight Tents", "Two tents <b>for</b> wet & windy camps."),
            item("轻量级帐篷", "双人帐篷，防水"),
            item("الْجِبَال", "رحلة إلى الجبال"),
            item("Café crème", "Un café très fort"),
            item("Organic T-Shirt", "Cotton"),
            item("Mug", "Costs 20 € only. Rust + C++ interop, 5★ rating ✓ done ☕"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        let highlight = |query: &str, i: usize| lexical.highlighter(query).unwrap().highlight(&items[i]);
        let tents = highlight("tent", 0);
        assert_eq!(tents.title.as_deref(), Some("Ultralight <em>Tents</em>"));
        assert_eq!(tents.text.as_deref(), Some("Two <em>tents</em> &lt;b&gt;for&lt;/b&gt; wet &amp; windy camps."));
        assert_eq!(highlight("帐篷", 1).title.as_deref(), Some("轻量级<em>帐篷</em>"));
        // Two CJK pairs that overlap are one marked span.
        assert_eq!(highlight("量级帐", 1).title.as_deref(), Some("轻<em>量级帐</em>篷"));
        assert_eq!(highlight("الجبال", 2).title.as_deref(), Some("<em>الْجِبَال</em>"), "vowel marks fold");
        assert_eq!(highlight("cafe creme", 3).title.as_deref(), Some("<em>Café</em> <em>crème</em>"));
        assert_eq!(highlight("tshirt", 4).title.as_deref(), Some("Organic <em>T-Shirt</em>"));
        // Mathematical symbols the query holds beside words are not marked; alone, they are.
        let words = highlight("< for wet >", 0).text.unwrap();
        assert!(words.contains("&lt;b&gt;<em>for</em>&lt;/b&gt; <em>wet</em>"), "{words}");
        assert!(highlight("&", 0).is_empty() && highlight("<", 0).text.unwrap().contains("<em>&lt;</em>"));
        let mixed = highlight("rust + costs €", 5).text.unwrap();
        assert_eq!(mixed, "<em>Costs</em> 20 <em>€</em> only. <em>Rust</em> + C++ interop, 5★ rating ✓ done ☕");
        // Currency and other symbols carry meaning: marked beside words too.
        let symbols = highlight("rating ✓ ☕", 5).text.unwrap();
        assert_eq!(symbols, "Costs 20 € only. Rust + C++ interop, 5★ <em>rating</em> <em>✓</em> done <em>☕</em>");
        let none = highlight("kayak", 0);
        assert!(none.is_empty(), "{none:?}");
        let title_only = highlight("ultralight", 0);
        assert!(title_only.title.is_some() && title_only.text.is_none(), "{title_only:?}");
    }

    /// Catalog fields BM25 searches are marked under their own analysis: a text value whole,
    /// a list's matching values in order, a long value cut to a fragment; a number never.
    #[test]
    fn searched_catalog_fields_are_marked_value_by_value() {
        let notes = format!("{}the trail notes{}", "filler ".repeat(30), " filler".repeat(30));
        let mut shoe = item("Trail shoe", "Light.");
        shoe.fields = [
            ("brand", FieldValue::Text("Salomon Trail".into())),
            ("tags", FieldValue::List(vec!["trail running".into(), "waterproof".into(), "Trails".into()])),
            ("year", FieldValue::Number(2019.0)),
            ("notes", FieldValue::Text(notes)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        let items = [shoe];
        let search_fields = ["brand", "tags", "year", "notes"].map(|name| SearchField::new(name, 1.0)).to_vec();
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings { search_fields, ..LexicalSettings::default() }, &items);
        let highlights = lexical.highlighter("trail 2019").unwrap().highlight(&items[0]);
        assert_eq!(highlights.fields["brand"], ["Salomon <em>Trail</em>"]);
        assert_eq!(highlights.fields["tags"], ["<em>trail</em> running", "<em>Trails</em>"]);
        assert!(!highlights.fields.contains_key("year"), "{highlights:?}");
        let [note] = &highlights.fields["notes"][..] else { panic!("{highlights:?}") };
        assert!(note.starts_with('…') && note.ends_with('…') && note.contains("the <em>trail</em> notes"), "{note}");
        let text_only = lexical.highlighter("light").unwrap().highlight(&items[0]);
        assert!(text_only.fields.is_empty() && text_only.text.is_some(), "{text_only:?}");
        let json = serde_json::to_value(&text_only).unwrap();
        assert!(json.get("fields").is_none(), "no field matched, no key: {json}");
    }

    /// A long text is cut to its best fragment, marked "…" where text is left out; a giant
    /// token is cut too.
    #[test]
    fn a_long_text_is_cut_to_its_best_fragment() {
        let filler = "lorem ipsum dolor sit amet ".repeat(20);
        let text = format!("{filler}the kayak paddle and the kayak seat {filler}");
        let giant = format!("start {} end", "x".repeat(70_000));
        let items = [item("Boat", &text), item("Giant", &giant)];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        let fragment = lexical.highlighter("kayak seat").unwrap().highlight(&items[0]).text.unwrap();
        assert!(fragment.starts_with('…') && fragment.ends_with('…'), "{fragment}");
        assert!(fragment.contains("<em>kayak</em> paddle and the <em>kayak</em> <em>seat</em>"), "{fragment}");
        assert!(shown(&fragment).len() <= FRAGMENT_BYTES + 2 * '…'.len_utf8(), "{fragment}");
        let cut = lexical.highlighter(&"x".repeat(70_000)).unwrap().highlight(&items[1]).text.unwrap();
        assert!(cut.len() < 4 * FRAGMENT_BYTES && cut.starts_with("start <em>x") && cut.ends_with("x</em>…"), "{cut}");
    }

    /// The trial's texts: a short text is shown whole with the punctuation around its words
    /// and its stop words; a long one is cut at spaces, keeps them too, and gives a match near
    /// its end a full fragment.
    #[test]
    fn fragments_are_cut_from_the_text_not_from_its_terms() {
        let filler = "lorem ipsum dolor sit amet ".repeat(8);
        let items = [
            item("Quote", "«Zeltplatz» am See, (neu) und \"leicht\"."),
            item("Paren", "(New) ¡Hola! Waterproof shelter."),
            item("Fly", &format!("A silnylon fly with taped seams. {filler}")),
            item("Quoted", &format!("{filler}the «Zeltplatz» am See {filler}")),
            item("Grinder", &format!("{filler}Steams silky microfoam for lattes. Made by Bloom.")),
            item("Tent", &format!("Ultralight two-person tent. {}with a vestibule.", "x ".repeat(50))),
        ];
        let dir = tempfile::tempdir().unwrap();
        let settings = LexicalSettings { stop_words: true, ..LexicalSettings::default() };
        let lexical = index(dir.path(), settings, &items);
        let text = |query: &str, i: usize| lexical.highlighter(query).unwrap().highlight(&items[i]).text.unwrap();
        assert_eq!(text("zeltplatz", 0), "«<em>Zeltplatz</em>» am See, (neu) und &quot;leicht&quot;.");
        assert_eq!(text("new", 1), "(<em>New</em>) ¡Hola! Waterproof shelter.");
        assert_eq!(text("hola", 1), "(New) ¡<em>Hola</em>! Waterproof shelter.");
        // A stop word is no term, and still opens the fragment.
        let fly = text("silnylon fly", 2);
        assert!(fly.starts_with("A <em>silnylon</em> <em>fly</em> with taped seams.") && fly.ends_with('…'), "{fly}");
        let quoted = text("zeltplatz", 3);
        assert!(quoted.contains(" «<em>Zeltplatz</em>» am See ") && quoted.starts_with('…'), "{quoted}");
        // Of two equal matches, the earlier is shown.
        let twice = format!("The kayak here. {filler}{filler}the kayak there. {filler}");
        let kayaks = [item("Kayaks", &twice)];
        let kayak_dir = tempfile::tempdir().unwrap();
        let kayak_index = index(kayak_dir.path(), LexicalSettings::default(), &kayaks);
        let kayak = kayak_index.highlighter("kayak").unwrap().highlight(&kayaks[0]).text.unwrap();
        assert!(kayak.contains("<em>kayak</em> here") && !kayak.contains("there"), "{kayak}");
        // A match at the end keeps the full stop after it.
        let bloom = text("bloom", 4);
        assert!(bloom.ends_with("<em>Bloom</em>."), "{bloom}");
        // A match near the end: the fragment reaches back a full fragment, to a word's start.
        let made = text("made", 4);
        assert!(made.starts_with('…') && made.ends_with("<em>Made</em> by Bloom."), "{made}");
        let shown = shown(&made);
        let shown = shown.trim_start_matches('…');
        assert!((FRAGMENT_BYTES - SNAP_BYTES..=FRAGMENT_BYTES).contains(&shown.len()), "{} bytes: {made}", shown.len());
        assert!(items[4].text.contains(&format!(" {shown}")), "starts at a word: {shown}");
        // The text's start a few words before the window's: shown from it, without "…".
        let vestibule = text("vestibule", 5);
        assert!(
            vestibule.starts_with("Ultralight two-person") && vestibule.ends_with("<em>vestibule</em>."),
            "{vestibule}"
        );
    }

    /// Runs without spaces around a match (a URL, a hash, emoji, decomposed accents) are cut
    /// inside, at a grapheme boundary, not dropped down to the match alone.
    #[test]
    fn runs_without_spaces_are_cut_inside_not_dropped() {
        let items = [
            item("A", &format!("Zebrafish {} tail words here", "a".repeat(400))),
            item("B", &format!("{} {} zebrafish {} end", "lorem ipsum ".repeat(5), "x".repeat(300), "y".repeat(300))),
            item("C", &format!("{} zebrafish {}", "😀".repeat(50), "😀".repeat(50))),
            // Letters with a combining accent (3 bytes a pair), at each of the three alignments
            // to the match (one to three spaces around it), so that cuts fall inside a pair.
            item("D", &format!("{} zebrafish {}", "e\u{0301}".repeat(80), "e\u{0301}".repeat(80))),
            item("D1", &format!("{}  zebrafish  {}", "e\u{0301}".repeat(80), "e\u{0301}".repeat(80))),
            item("D2", &format!("{}   zebrafish   {}", "e\u{0301}".repeat(80), "e\u{0301}".repeat(80))),
            item("E", &format!("See https://example.com/{} zebrafish {} end", "a/".repeat(100), "more-".repeat(60))),
        ];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        for (i, it) in items.iter().enumerate() {
            let marked = lexical.highlighter("zebrafish").unwrap().highlight(it).text.unwrap();
            let shown = shown(&marked);
            let piece = shown.trim_start_matches('…').trim_end_matches('…');
            assert!(it.text.contains(piece), "{i}: {marked}");
            assert!(piece.len() >= FRAGMENT_BYTES - 2 * SNAP_BYTES, "{i}: {} bytes: {marked}", piece.len());
            assert!(piece.len() <= FRAGMENT_BYTES + 2 * SNAP_BYTES, "{i}: {} bytes: {marked}", piece.len());
            let first = piece.chars().next().unwrap();
            assert!(!unicode_normalization::char::is_combining_mark(first), "{i}: starts with a mark: {marked}");
            if (3..6).contains(&i) {
                assert!(piece.ends_with('\u{0301}'), "an accent cut from its letter: {marked}");
            }
        }
    }

    /// A matched word is marked whole or not at all: where a text has no spaces (Thai), the
    /// fragment's edge may fall inside a later match, which was marked in part ("…<em>กา</em>…"
    /// for "กาแฟ"). Such a word is now shown whole, the edge moved to its end (or start).
    #[test]
    fn a_match_at_the_fragment_s_edge_is_marked_whole() {
        // Coffee, then fillers of every length, so that some edge falls inside a later "กาแฟ".
        let mut items: Vec<Item> =
            (0..12).map(|n| item("T", &format!("กาแฟ{}กาแฟ{}", "ร้อนมาก".repeat(5 + n), "น้ำชา".repeat(30)))).collect();
        for n in 0..12 {
            items.push(item("U", &format!("{}{}", "ร้าน".repeat(n), "ฉันชอบดื่มกาแฟทุกเช้าที่ร้านกาแฟใกล้บ้าน".repeat(8))));
            items.push(item("V", &format!("{}{}", "น้ำ".repeat(n), "กาแฟเย็นหวานน้อยกาแฟร้อน".repeat(10))));
        }
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        let highlighter = lexical.highlighter("กาแฟ").unwrap();
        for (n, it) in items.iter().enumerate() {
            let marked = highlighter.highlight(it).text.unwrap_or_else(|| panic!("{n}: nothing marked in {}", it.text));
            let marks: Vec<&str> = marked.split("<em>").skip(1).map(|m| m.split("</em>").next().unwrap()).collect();
            assert!(!marks.is_empty() && marks.iter().all(|m| *m == "กาแฟ"), "{n}: {marked}");
            let piece = shown(&marked);
            assert!(it.text.contains(piece.trim_start_matches('…').trim_end_matches('…')), "{n}: {marked}");
        }
    }

    /// A joined word comes after its parts and starts before them: a chain of hyphenated
    /// words longer than a fragment, searched as written, still marks inside its fragment.
    #[test]
    fn a_joined_word_longer_than_a_fragment_marks_inside_it() {
        let chain = (0..40).map(|i| format!("part{}", char::from(b'a' + i % 26))).collect::<Vec<_>>().join("-");
        let items = [item("Chain", &format!("before {chain} after"))];
        let dir = tempfile::tempdir().unwrap();
        let lexical = index(dir.path(), LexicalSettings::default(), &items);
        for query in [chain.as_str(), &chain.replace('-', ""), "partc"] {
            let marked = lexical.highlighter(query).unwrap().highlight(&items[0]).text.unwrap();
            let shown = shown(&marked);
            assert!(items[0].text.contains(shown.trim_matches('…')), "{query}: {marked}");
            assert!(marked.contains(PRE) && shown.len() <= 2 * FRAGMENT_BYTES + 8, "{query}: {marked}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// For any text and a query taken from it, under either analyzer: no panic, and what a
        /// highlight shows is the title itself, or a piece of the text.
        #[test]
        fn a_highlight_shows_the_item_s_own_text(
            title in "\\PC{0,40}",
            text in "(\\PC|[ .,'-]){0,400}",
            from in 0usize..400,
            len in 1usize..12,
            simple in any::<bool>(),
        ) {
            let items = [item(&title, &text)];
            let settings = LexicalSettings {
                analyzer: if simple { Analyzer::Simple } else { Analyzer::default() },
                ..LexicalSettings::default()
            };
            let dir = tempfile::tempdir().unwrap();
            let lexical = index(dir.path(), settings, &items);
            let chars: Vec<char> = text.chars().chain(title.chars()).collect();
            let from = from.min(chars.len());
            let query: String = chars[from..(from + len).min(chars.len())].iter().collect();
            let highlights = lexical.highlighter(&query).unwrap().highlight(&items[0]);
            if let Some(marked) = &highlights.title {
                prop_assert_eq!(shown(marked), title.clone());
                prop_assert!(marked.contains(PRE));
            }
            if let Some(marked) = &highlights.text {
                let piece = shown(marked);
                let piece = piece.trim_start_matches('…').trim_end_matches('…');
                prop_assert!(text.contains(piece), "{:?} is not in {:?}", piece, text);
                prop_assert!(marked.contains(PRE));
            }
        }
    }
}
