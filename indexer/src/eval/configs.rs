//! `hyrank eval search`'s configurations: the presets `--configs` names, the overrides after
//! `+`, and which overrides a run would not apply.

use hyrank_engine::fusion::Fusion;
use hyrank_engine::lexical::{Bm25Overrides, Bm25Params, FieldCombination, Fuzziness, Prefix};
use hyrank_engine::request::{candidates_for, RerankOptions, RerankerKind, SearchRequest, Weights};
use hyrank_engine::Mode;

/// A named retrieval configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Name in reports and file names.
    pub name: String,
    pub(super) mode: Mode,
    pub(super) fusion: Fusion,
    pub(super) weights: Weights,
    /// Candidates per retriever; `None` takes the evaluation's `candidates`.
    pub(super) candidates: Option<usize>,
    pub(super) rerank: Option<RerankOptions>,
    /// BM25's k1, b and field combination; what is absent keeps the generation's.
    pub(super) bm25: Bm25Overrides,
}

/// The configurations `--configs` accepts.
pub const PRESETS: [&str; 8] = [
    "default",
    "bm25",
    "dense",
    "hybrid-rrf",
    "hybrid-linear",
    "hybrid-linear-floor",
    "hybrid-dbsf",
    "hybrid-rrf-rerank",
];

/// Parameters a configuration may override after `+`.
pub const PARAMETERS: [&str; 12] =
    ["bm25", "dense", "k", "candidates", "rerank", "reranker", "k1", "b", "title_b", "fields", "fuzziness", "prefix"];

impl Config {
    /// A preset by name: `default` (exactly what a search request with no options gets, its
    /// candidate depth included), `bm25`, `dense`, `hybrid-rrf` (k = 60), `hybrid-linear`
    /// (0.5 / 0.5 over min-max-normalised scores), `hybrid-linear-floor` (0.5 / 0.5, each list
    /// from its floor), `hybrid-dbsf`, `hybrid-rrf-rerank` (the late-interaction reranker over
    /// the top 20).
    pub fn preset(name: &str) -> Option<Config> {
        let config = |mode, fusion, weights, rerank| Config {
            name: name.to_string(),
            mode,
            fusion,
            weights,
            candidates: None,
            rerank,
            bm25: Bm25Overrides::default(),
        };
        let half = Weights { bm25: Some(0.5), dense: Some(0.5), cf: None };
        Some(match name {
            "default" => {
                let request = SearchRequest::new("");
                Config {
                    candidates: Some(candidates_for(request.k, request.candidates)),
                    ..config(request.mode, request.fusion, request.weights, request.rerank)
                }
            }
            "bm25" => config(Mode::Bm25, Fusion::default(), Weights::default(), None),
            "dense" => config(Mode::Dense, Fusion::default(), Weights::default(), None),
            "hybrid-rrf" => config(Mode::Hybrid, Fusion::Rrf { k: 60.0 }, Weights::default(), None),
            "hybrid-linear" => config(Mode::Hybrid, Fusion::Linear, half, None),
            "hybrid-linear-floor" => config(Mode::Hybrid, Fusion::LinearFloor, half, None),
            "hybrid-dbsf" => config(Mode::Hybrid, Fusion::Dbsf, half, None),
            "hybrid-rrf-rerank" => config(
                Mode::Hybrid,
                Fusion::Rrf { k: 60.0 },
                Weights::default(),
                Some(RerankOptions::top(20, Some(RerankerKind::LateInteraction))),
            ),
            _ => return None,
        })
    }

    /// A preset with overrides, e.g. `hybrid-linear+bm25=0.3+dense=0.7+candidates=200` or
    /// `hybrid-rrf+k=20`: fusion weights (`bm25`, `dense`), the RRF constant (`k`), candidates
    /// per retriever (`candidates`), a rerank depth or `off` (`rerank`; the generation's
    /// default reranker unless `reranker=trained|late` says), BM25's `k1`, `b` and `fields`
    /// (`bm25f` or `sum`). The whole spec is the name.
    pub fn parse(spec: &str) -> std::result::Result<Config, String> {
        let mut parts = spec.split('+');
        let preset = parts.next().unwrap_or_default();
        let mut config = Config::preset(preset)
            .ok_or_else(|| format!("unknown configuration {preset:?}; choose from {PRESETS:?}"))?;
        config.name = spec.to_string();
        for part in parts {
            let (key, value) =
                part.split_once('=').ok_or_else(|| format!("{spec:?}: expected key=value after '+', got {part:?}"))?;
            let number = || {
                value
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| format!("{spec:?}: {key} must be a non-negative number, got {value:?}"))
            };
            let count = || {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{spec:?}: {key} must be a positive whole number, got {value:?}"))
            };
            match key {
                "bm25" => config.weights.bm25 = Some(number()?),
                "dense" => config.weights.dense = Some(number()?),
                "k" => match &mut config.fusion {
                    Fusion::Rrf { k } => *k = number()?,
                    Fusion::Linear | Fusion::LinearFloor | Fusion::Dbsf => {
                        return Err(format!("{spec:?}: k applies to RRF fusion only"))
                    }
                },
                "candidates" => config.candidates = Some(count()?),
                "k1" => config.bm25.k1 = Some(number()? as f32),
                "b" => config.bm25.b = Some(number()? as f32),
                "title_b" => config.bm25.title_b = Some(number()? as f32),
                "fields" => {
                    config.bm25.fields = Some(match value {
                        "bm25f" => FieldCombination::Bm25f,
                        "sum" => FieldCombination::Sum,
                        _ => return Err(format!("{spec:?}: fields must be bm25f or sum, got {value:?}")),
                    })
                }
                "fuzziness" => {
                    config.bm25.fuzziness = Some(match value {
                        "auto" => Fuzziness::Auto,
                        "off" => Fuzziness::Off,
                        _ => return Err(format!("{spec:?}: fuzziness must be auto or off, got {value:?}")),
                    })
                }
                "prefix" => {
                    config.bm25.prefix = Some(match value {
                        "last" => Prefix::Last,
                        "off" => Prefix::Off,
                        _ => return Err(format!("{spec:?}: prefix must be last or off, got {value:?}")),
                    })
                }
                "rerank" if value == "off" => config.rerank = Some(RerankOptions::off()),
                "rerank" => {
                    let reranker = config.rerank.as_ref().and_then(|r| r.reranker);
                    config.rerank = Some(RerankOptions::top(count()?, reranker));
                }
                "reranker" => {
                    let kind = match value {
                        "trained" => RerankerKind::Trained,
                        "late" => RerankerKind::LateInteraction,
                        _ => return Err(format!("{spec:?}: reranker must be trained or late, got {value:?}")),
                    };
                    let mut options =
                        config.rerank.take().filter(|r| r.enabled).unwrap_or_else(|| RerankOptions::top(0, None));
                    options.reranker = Some(kind);
                    if options.depth == Some(0) {
                        options.depth = None;
                    }
                    config.rerank = Some(options);
                }
                _ => return Err(format!("{spec:?}: unknown parameter {key:?}; choose from {PARAMETERS:?}")),
            }
        }
        // The last of two would win, and the name would claim the other too.
        let given: Vec<&str> = config.given().collect();
        if let Some(key) = given.iter().enumerate().find_map(|(i, key)| given[..i].contains(key).then_some(key)) {
            return Err(format!(
                "{spec:?}: {key} is given twice (the name would claim a setting the run does not have)"
            ));
        }
        if given.contains(&"reranker") && spec.split('+').any(|part| part == "rerank=off") {
            return Err(format!(
                "{spec:?}: rerank=off and reranker name opposite runs (the name would claim a setting the run does not have)"
            ));
        }
        // Refused here where a rerank is off by name; where it is left to the generation, once
        // the generation is known ([`Config::moot`] in `evaluate`).
        config.moot(config.rerank.as_ref().is_some_and(|r| !r.enabled))?;
        // The engine's own bounds, now: at the configuration's first query they came after the
        // configurations before it had run and written their files (and after an index was
        // built), and without the configuration's name.
        config.bounds().map_err(|e| format!("{spec:?}: {e}"))?;
        Ok(config)
    }

    /// The engine's bounds on the values a configuration gives: weights, RRF's k, BM25's k1
    /// and b (over any generation's, whose own are in bounds), the rerank depth.
    fn bounds(&self) -> hyrank_engine::Result<()> {
        self.weights.check()?;
        self.fusion.check()?;
        self.bm25.over(Bm25Params::TANTIVY).check()?;
        if let Some(depth) = self.rerank.as_ref().filter(|r| r.enabled).and_then(|r| r.depth) {
            hyrank_engine::request::check_rerank_depth(depth)?;
        }
        Ok(())
    }

    /// The overrides given in the name.
    fn given(&self) -> impl Iterator<Item = &str> {
        self.name.split('+').skip(1).filter_map(|o| o.split_once('=').map(|(key, _)| key.trim()))
    }

    /// Refuses an override that would change nothing, where the run is `unranked` (no
    /// reranker): BM25's parameters change nothing the dense retriever finds, and a single
    /// retriever's list with no reranker is ranked as it is, so no weight or fusion constant
    /// changes it either (the late-interaction reranker adds the fused score, so there they
    /// may).
    ///
    /// # Errors
    /// The name, the override and why, as `--configs` reports it.
    pub(super) fn moot(&self, unranked: bool) -> std::result::Result<(), String> {
        let moot: &[&str] = match (self.mode, unranked) {
            (Mode::Dense, true) => &["bm25", "dense", "k", "k1", "b", "title_b", "fields", "fuzziness", "prefix"],
            (Mode::Dense, false) => &["k1", "b", "title_b", "fields", "fuzziness", "prefix"],
            (Mode::Bm25, true) => &["bm25", "dense", "k"],
            _ => &[],
        };
        match self.given().find(|key| moot.contains(key)) {
            Some(key) => Err(format!(
                "{:?}: {key} would have no effect: {} ranks one retriever's list{} (the name would claim a setting \
                 the run does not have)",
                self.name,
                self.name.split('+').next().unwrap_or_default(),
                if unranked { " as it is, with no reranker" } else { "" }
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_to_the_preset_and_name_the_config() {
        let config = Config::parse("hybrid-linear+bm25=0.3+dense=0.7+candidates=200").unwrap();
        assert_eq!(config.name, "hybrid-linear+bm25=0.3+dense=0.7+candidates=200");
        assert_eq!(config.fusion, Fusion::Linear);
        assert_eq!((config.weights.bm25, config.weights.dense), (Some(0.3), Some(0.7)));
        assert_eq!(config.candidates, Some(200));
        let rrf = Config::parse("hybrid-rrf+k=20+rerank=50").unwrap();
        assert_eq!(rrf.fusion, Fusion::Rrf { k: 20.0 });
        assert_eq!(rrf.rerank.map(|r| r.depth), Some(Some(50)));
        let bm25 = Config::parse("bm25+k1=0.9+b=0.4+title_b=0+fields=sum+fuzziness=off+prefix=last").unwrap().bm25;
        assert_eq!(bm25.prefix, Some(Prefix::Last));
        assert_eq!((bm25.k1, bm25.b, bm25.title_b), (Some(0.9), Some(0.4), Some(0.0)));
        assert_eq!((bm25.fields, bm25.fuzziness), (Some(FieldCombination::Sum), Some(Fuzziness::Off)));
        // What a single retriever's list can be changed by: its depth and a reranker.
        let dense = Config::parse("dense+candidates=50+rerank=20").unwrap();
        assert_eq!((dense.candidates, dense.rerank.map(|r| r.depth)), (Some(50), Some(Some(20))));
        // The late-interaction reranker adds the fused score, which a weight and k move.
        let late = Config::parse("bm25+reranker=late+k=10+bm25=2").unwrap();
        assert_eq!((late.fusion, late.weights.bm25), (Fusion::Rrf { k: 10.0 }, Some(2.0)));
    }

    #[test]
    fn the_default_preset_is_what_a_bare_request_gets() {
        let config = Config::parse("default").unwrap();
        let request = SearchRequest::new("q");
        assert_eq!(
            (config.mode, &config.fusion, config.candidates),
            (request.mode, &request.fusion, Some(candidates_for(request.k, request.candidates)))
        );
        assert_eq!(config.candidates, Some(hyrank_engine::request::defaults::CANDIDATES), "not the evaluation's own");
        assert_eq!((config.weights.bm25, config.weights.dense), (request.weights.bm25, request.weights.dense));
    }

    #[test]
    fn rerank_can_be_turned_off_or_pinned_to_a_reranker() {
        let off = Config::parse("default+rerank=off").unwrap();
        assert_eq!(off.rerank, Some(RerankOptions::off()));
        let trained = Config::parse("default+reranker=trained+rerank=50").unwrap().rerank.unwrap();
        assert_eq!((trained.reranker, trained.depth), (Some(RerankerKind::Trained), Some(50)));
        let late = Config::parse("default+rerank=30+reranker=late").unwrap().rerank.unwrap();
        assert_eq!((late.reranker, late.depth), (Some(RerankerKind::LateInteraction), Some(30)));
        let bare = Config::parse("default+reranker=trained").unwrap().rerank.unwrap();
        assert_eq!((bare.enabled, bare.depth), (true, None), "the depth the reranker was validated at");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, expected) in [
            ("hybrid", "unknown configuration \"hybrid\""),
            ("hybrid-linear+k=20", "k applies to RRF fusion only"),
            ("bm25+depth=3", "unknown parameter \"depth\""),
            ("hybrid-linear+bm25", "expected key=value"),
            ("hybrid-linear+bm25=-1", "non-negative number"),
            ("hybrid-rrf+candidates=0", "positive whole number"),
            ("default+reranker=cross", "reranker must be trained or late"),
            ("bm25+dense=0.7+rerank=off", "dense would have no effect: bm25 ranks one retriever's list as it is"),
            ("bm25+rerank=off+k=20", "k would have no effect"),
            ("dense+k1=0.9", "k1 would have no effect: dense ranks one retriever's list (the name"),
            ("dense+fields=sum+rerank=off", "fields would have no effect"),
            // Either order: the last would win, and the name would still claim the first.
            ("default+rerank=off+reranker=late", "rerank=off and reranker name opposite runs"),
            ("default+reranker=late+rerank=off", "rerank=off and reranker name opposite runs"),
            ("default+rerank=off+rerank=10", "rerank is given twice"),
            ("default+rerank=10+rerank=off", "rerank is given twice"),
            ("hybrid-linear+bm25=0.3+bm25=0.7", "bm25 is given twice"),
            // Past the engine's bounds: refused as the spec is read, named, not at its first query.
            ("hybrid-linear+bm25=2e6", "\"hybrid-linear+bm25=2e6\": invalid weights.bm25: 2e6 is not a weight"),
            ("hybrid-rrf+k=1e7", "\"hybrid-rrf+k=1e7\": invalid fusion.k: 1e7 is not an RRF constant"),
            ("bm25+k1=101", "invalid bm25.k1"),
            ("bm25+fuzziness=some", "fuzziness must be auto or off"),
            ("bm25+prefix=first", "prefix must be last or off"),
            ("bm25+b=1.5", "invalid bm25.b: 1.5 is not between 0 and 1"),
            ("default+title_b=2", "invalid bm25.title_b"),
            ("default+rerank=100000", "invalid rerank.depth"),
        ] {
            let error = Config::parse(spec).unwrap_err();
            assert!(error.contains(expected), "{spec}: {error}");
        }
    }
}
