//! PreTTR's two sides (MacAvaney et al., SIGIR 2020): the frozen layers over the query alone
//! and over each item alone, the item side read from the stored states ([`super::states`])
//! where the generation has them, and the states themselves checked and attached.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::native;
use super::states::{DeviceStates, ItemStates, QuantizedStates, StatesHeader};
use super::{CrossEncoder, FrozenPass, ItemText};
use crate::embed::QueryStates;
use crate::error::{Error, Result};

impl CrossEncoder {
    /// Whether it is a PreTTR model (the frozen layers read each side alone).
    pub fn is_prettr(&self) -> bool {
        self.item_tokens.is_some()
    }

    /// The header a states file must carry to serve this model over a catalog of `items`, for
    /// a base model of this SHA-256; `None` for a joint model, which stores no states.
    pub fn states_header(&self, base_model_sha256: &str, items: usize) -> Option<StatesHeader> {
        Some(StatesHeader {
            base_model_sha256: base_model_sha256.to_string(),
            precision: self.lower.precision().name().to_string(),
            frozen_layers: self.frozen_layers,
            max_tokens: self.max_tokens(),
            item_tokens: self.item_tokens?,
            hidden: self.hidden,
            items,
        })
    }

    /// Serves PreTTR's item side from `states` (items it does not hold are computed on the
    /// fly). The caller has checked the file against [`CrossEncoder::states_header`].
    ///
    /// # Errors
    /// A joint model, or states of another width or window than the model's.
    pub fn attach_states(&mut self, states: ItemStates) -> Result<()> {
        let header = states.header();
        if self.item_tokens != Some(header.item_tokens)
            || header.frozen_layers != self.frozen_layers
            || header.hidden != self.hidden
        {
            return Err(Error::invalid("item states", format!("{header:?} do not fit this reranker")));
        }
        // On an accelerator the states move there once, so that a request gathers its
        // candidates' rows on the device (`frozen_gathered`). HYRANK_RERANK_STATES=host keeps
        // them on the host, to compare the two (bench/gpu_run.sh).
        self.device_states = None;
        if !self.device.is_cpu() && std::env::var("HYRANK_RERANK_STATES").as_deref() != Ok("host") {
            match states.to_device(&self.device) {
                Ok(on_device) => {
                    tracing::info!(
                        mib = on_device.bytes() as f64 / (1 << 20) as f64,
                        "reranker: item states copied to the device"
                    );
                    self.device_states = Some(on_device);
                }
                // Still computed on the device: only the copy per request stays on the host.
                Err(e) => tracing::warn!(error = %e, "reranker: item states kept on the host"),
            }
        }
        self.states = Some(states);
        Ok(())
    }

    /// Whether the item at catalog index `index` is scored from the attached states (its text
    /// is then not read).
    pub fn stores_item(&self, index: u32) -> bool {
        self.states.as_ref().is_some_and(|states| (index as usize) < states.header().items)
    }

    /// The attached precomputed states.
    pub fn states(&self) -> Option<&ItemStates> {
        self.states.as_ref()
    }

    /// Each text alone (`[CLS] text [SEP]`, truncated to the token limit) through the frozen
    /// layers: its real tokens' states, `(tokens, hidden)` row-major, one vector per text.
    pub(super) fn frozen_alone(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let hidden = self.hidden;
        if let Some(lower) = self.lower.native() {
            let packing = native::packing(&encodings);
            let rows = lower.forward(&packing, self.frozen_layers)?;
            let mut start = 0;
            return Ok(packing
                .lengths
                .iter()
                .map(|&len| {
                    let out = rows[start * hidden..(start + len) * hidden].to_vec();
                    start += len;
                    out
                })
                .collect());
        }
        let (rows, width) = (encodings.len(), encodings.first().map_or(0, |e| e.get_ids().len()));
        let ids: Vec<u32> = encodings.iter().flat_map(|e| e.get_ids().iter().copied()).collect();
        let mask: Vec<u32> = encodings.iter().flat_map(|e| e.get_attention_mask().iter().copied()).collect();
        let padded = mask.contains(&0);
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let mask_tensor = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let (states, _) =
            self.lower.forward_tapped(&ids, None, padded.then_some(&mask_tensor), self.frozen_layers, None)?;
        let states = states.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.to_vec3::<f32>()?;
        Ok(encodings
            .iter()
            .zip(states)
            .map(|(e, row)| {
                let real = e.get_attention_mask().iter().filter(|&&m| m == 1).count();
                row.into_iter().take(real).flatten().collect()
            })
            .collect())
    }

    /// Every distinct query of `pairs` through the frozen layers once, for all the passes that
    /// score them: taken from `known` where the embedder's pass left them and they are this
    /// model's input, the rest run here in one batch, counted in [`CrossEncoder::query_passes`]
    /// (once per call, however many passes follow). What the passes are then handed as known.
    pub(super) fn queries_once(
        &self,
        pairs: &[(&str, ItemText<'_>)],
        known: &[&QueryStates],
    ) -> Result<Vec<QueryStates>> {
        let (distinct, _) = distinct_queries(pairs);
        let (rows, reused) = self.frozen_queries(&distinct, known)?;
        self.query_passes.add(reused as u64, (distinct.len() - reused) as u64);
        distinct
            .iter()
            .zip(rows)
            .map(|(&query, rows)| {
                let encoding = self.tokenizer.encode(query, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
                let ids = encoding.get_ids().to_vec();
                Ok(QueryStates::new(query, ids, self.frozen_layers, Arc::clone(&self.lower), rows))
            })
            .collect()
    }

    /// Each distinct query's states after the frozen layers, `(tokens, hidden)` row-major: from
    /// `known` where the embedder's pass of that query left them and they are this model's
    /// input ([`QueryStates`]), the rest through the frozen layers here, in one batch; and how
    /// many were taken.
    fn frozen_queries(&self, distinct: &[&str], known: &[&QueryStates]) -> Result<(Vec<Vec<f32>>, usize)> {
        let mut taken: Vec<Option<Vec<f32>>> = vec![None; distinct.len()];
        for (slot, &query) in taken.iter_mut().zip(distinct) {
            let Some(states) = known.iter().find(|states| states.text() == query) else { continue };
            // Tokenizing again costs microseconds and proves the states are for these ids (the
            // embedder may truncate at another token limit).
            let encoding = self.tokenizer.encode(query, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
            *slot = states.rows_for(&self.lower, self.frozen_layers, encoding.get_ids()).map(<[f32]>::to_vec);
        }
        let missing: Vec<&str> = distinct.iter().zip(&taken).filter(|(_, t)| t.is_none()).map(|(&q, _)| q).collect();
        let reused = distinct.len() - missing.len();
        let mut computed = if missing.is_empty() { Vec::new() } else { self.frozen_alone(&missing)? }.into_iter();
        let rows = taken
            .into_iter()
            .map(|t| {
                t.or_else(|| computed.next())
                    .ok_or_else(|| Error::Tokenizer("fewer query encodings than queries".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((rows, reused))
    }

    /// PreTTR's stored form of each item's side: the frozen layers over the item alone, its
    /// first `item_tokens` tokens, quantized ([`states`]). What the trainer stores for every
    /// item, and what a text outside the stored catalog is scored with.
    ///
    /// # Errors
    /// A joint model, or a tokenizer or device failure.
    pub fn item_states(&self, texts: &[&str]) -> Result<Vec<QuantizedStates>> {
        let window = self.item_tokens.ok_or_else(|| Error::invalid("item states", "a joint cross-encoder has none"))?;
        let hidden = self.hidden;
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch_size.max(1)) {
            for rows in self.frozen_alone(chunk)? {
                let kept = rows.len().min(window * hidden);
                out.push(QuantizedStates::quantize(&rows[..kept], hidden)?);
            }
        }
        Ok(out)
    }

    /// PreTTR's two sides of every pair after the frozen layers, `(tokens, hidden)` row-major:
    /// each distinct query once, and each item from the attached states or computed.
    pub(super) fn sides(&self, pairs: &[(&str, ItemText<'_>)], known: &[&QueryStates]) -> Result<Sides> {
        let (distinct, query_of) = distinct_queries(pairs);
        let (queries, _) = self.frozen_queries(&distinct, known)?;
        let mut items = vec![Vec::new(); pairs.len()];
        let mut missing = Vec::new();
        for (i, (_, item)) in pairs.iter().enumerate() {
            let stored = match (&self.states, item.index) {
                (Some(states), Some(index)) => states.dequantize_into(index, &mut items[i]).is_some(),
                _ => false,
            };
            if !stored {
                missing.push(i);
            }
        }
        if !missing.is_empty() {
            let texts: Vec<&str> = missing.iter().map(|&i| pairs[i].1.text).collect();
            for (&i, states) in missing.iter().zip(self.item_states(&texts)?) {
                states.dequantize_into(&mut items[i]);
            }
        }
        Ok(Sides { queries, query_of, items })
    }

    /// [`CrossEncoder::frozen`] for PreTTR: each pair's query states then item states, padded
    /// to the longest pair.
    pub(super) fn frozen_prettr(&self, pairs: &[(&str, ItemText<'_>)], known: &[&QueryStates]) -> Result<FrozenPass> {
        if let (Some(on_device), Some(states)) = (&self.device_states, &self.states) {
            return self.frozen_gathered(pairs, known, states, on_device);
        }
        let mut phases = super::Phases::start(&self.device, crate::profile::Profiled::Rerank)?;
        let sides = self.sides(pairs, known)?;
        phases.mark("sides on the host", pairs.len(), 0)?;
        let hidden = self.hidden;
        let lengths: Vec<(usize, usize)> = (0..pairs.len())
            .map(|i| (sides.queries[sides.query_of[i]].len() / hidden, sides.items[i].len() / hidden))
            .collect();
        let width = lengths.iter().map(|(q, d)| q + d).max().unwrap_or(0);
        let rows = pairs.len();
        let mut states = vec![0.0f32; rows * width * hidden];
        let (mut query_mask, mut item_mask) = (vec![0.0f32; rows * width], vec![0.0f32; rows * width]);
        for (i, &(q, d)) in lengths.iter().enumerate() {
            let row = &mut states[i * width * hidden..(i + 1) * width * hidden];
            row[..q * hidden].copy_from_slice(&sides.queries[sides.query_of[i]]);
            row[q * hidden..(q + d) * hidden].copy_from_slice(&sides.items[i]);
            query_mask[i * width..i * width + q].fill(1.0);
            item_mask[i * width + q..i * width + q + d].fill(1.0);
        }
        let tensor = |data: Vec<f32>, shape: &[usize]| Tensor::from_vec(data, shape, &self.device);
        let query_mask = tensor(query_mask, &[rows, width])?;
        let item_mask = tensor(item_mask, &[rows, width])?;
        let pass = FrozenPass {
            hidden: tensor(states, &[rows, width, hidden])?,
            mask: (&query_mask + &item_mask)?,
            query_mask,
            item_mask,
        };
        phases.mark("copy to the device", rows, width)?;
        Ok(pass)
    }
}

impl CrossEncoder {
    /// [`CrossEncoder::frozen_prettr`] with the stored items' states gathered on the device from
    /// `on_device`: what crosses from the host per batch is the queries' states, the states of
    /// any item the file does not hold (an item added after the generation, computed here as
    /// the host path computes it) and two `u32` row indexes per position, not the stored items'
    /// floats. The result equals the host path's bit for bit (a test).
    fn frozen_gathered(
        &self,
        pairs: &[(&str, ItemText<'_>)],
        known: &[&QueryStates],
        states: &ItemStates,
        on_device: &DeviceStates,
    ) -> Result<FrozenPass> {
        let mut phases = super::Phases::start(&self.device, crate::profile::Profiled::Rerank)?;
        let spans: Vec<Option<std::ops::Range<usize>>> =
            pairs.iter().map(|(_, item)| item.index.and_then(|index| states.token_span(index))).collect();
        let (distinct, query_of) = distinct_queries(pairs);
        let (queries, _) = self.frozen_queries(&distinct, known)?;
        phases.mark("query frozen pass", distinct.len(), queries.iter().map(Vec::len).sum::<usize>() / self.hidden)?;
        let missing: Vec<usize> = (0..pairs.len()).filter(|&i| spans[i].is_none()).collect();
        let mut computed = vec![Vec::new(); pairs.len()];
        if !missing.is_empty() {
            let texts: Vec<&str> = missing.iter().map(|&i| pairs[i].1.text).collect();
            for (&i, item) in missing.iter().zip(self.item_states(&texts)?) {
                item.dequantize_into(&mut computed[i]);
            }
        }
        let hidden = self.hidden;
        // Rows sent from the host, gathered by `host_rows`: each query's states, each item
        // computed here, then a zero row for every position they do not fill.
        let mut table = Vec::with_capacity(queries.iter().chain(&computed).map(Vec::len).sum::<usize>() + hidden);
        let mut append = |rows: &[f32]| {
            let at = (table.len() / hidden) as u32;
            table.extend_from_slice(rows);
            at
        };
        let query_first: Vec<u32> = queries.iter().map(|q| append(q)).collect();
        let item_first: Vec<u32> = computed.iter().map(|d| append(d)).collect();
        let host_pad = (table.len() / hidden) as u32;
        table.resize(table.len() + hidden, 0.0);
        let lengths: Vec<(usize, usize)> = (0..pairs.len())
            .map(|i| {
                let item = spans[i].as_ref().map_or(computed[i].len() / hidden, |span| span.len());
                (queries[query_of[i]].len() / hidden, item)
            })
            .collect();
        let width = lengths.iter().map(|(q, d)| q + d).max().unwrap_or(0);
        let rows = pairs.len();
        let (mut host_rows, mut device_rows) = (vec![host_pad; rows * width], vec![on_device.pad_row(); rows * width]);
        let (mut query_mask, mut item_mask) = (vec![0.0f32; rows * width], vec![0.0f32; rows * width]);
        for (i, &(q, d)) in lengths.iter().enumerate() {
            let at = i * width;
            for (j, row) in host_rows[at..at + q].iter_mut().enumerate() {
                *row = query_first[query_of[i]] + j as u32;
            }
            let item = at + q..at + q + d;
            let (rows_of, first) = match &spans[i] {
                Some(span) => (&mut device_rows, span.start as u32),
                None => (&mut host_rows, item_first[i]),
            };
            for (j, row) in rows_of[item.clone()].iter_mut().enumerate() {
                *row = first + j as u32;
            }
            query_mask[at..at + q].fill(1.0);
            item_mask[item].fill(1.0);
        }
        let device = &self.device;
        let table = Tensor::from_vec(table, (host_pad as usize + 1, hidden), device)?;
        let host_side = table.index_select(&Tensor::from_vec(host_rows, rows * width, device)?, 0)?;
        let stored_side = on_device.gather(&Tensor::from_vec(device_rows, rows * width, device)?)?;
        let query_mask = Tensor::from_vec(query_mask, (rows, width), device)?;
        let item_mask = Tensor::from_vec(item_mask, (rows, width), device)?;
        let pass = FrozenPass {
            hidden: (host_side + stored_side)?.reshape((rows, width, hidden))?,
            mask: (&query_mask + &item_mask)?,
            query_mask,
            item_mask,
        };
        phases.mark("gather states", rows, width)?;
        Ok(pass)
    }
}

/// Counts of a PreTTR reranker's query passes, by where they came from.
#[derive(Debug, Default)]
pub struct QueryPasses {
    reused: std::sync::atomic::AtomicU64,
    run: std::sync::atomic::AtomicU64,
}

impl QueryPasses {
    /// The totals so far.
    pub fn counts(&self) -> QueryPassCounts {
        use std::sync::atomic::Ordering::Relaxed;
        QueryPassCounts { reused: self.reused.load(Relaxed), run: self.run.load(Relaxed) }
    }

    pub(super) fn add(&self, reused: u64, run: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.reused.fetch_add(reused, Relaxed);
        self.run.fetch_add(run, Relaxed);
    }
}

/// Queries' frozen passes of a PreTTR reranker ([`CrossEncoder::query_passes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryPassCounts {
    /// Taken from the pass that embedded the query.
    pub reused: u64,
    /// Run by the reranker (no dense retrieval in the request, an embedding from the query
    /// cache, the query-encoding worker, or another tokenization).
    pub run: u64,
}

/// The distinct queries of a batch of pairs, in first-seen order, and each pair's among them.
fn distinct_queries<'a>(pairs: &[(&'a str, ItemText<'_>)]) -> (Vec<&'a str>, Vec<usize>) {
    let mut distinct: Vec<&str> = Vec::new();
    let query_of = pairs
        .iter()
        .map(|(query, _)| match distinct.iter().position(|q| q == query) {
            Some(i) => i,
            None => {
                distinct.push(query);
                distinct.len() - 1
            }
        })
        .collect();
    (distinct, query_of)
}

/// PreTTR's two sides of a batch of pairs after the frozen layers.
pub(super) struct Sides {
    /// Each distinct query's states.
    pub(super) queries: Vec<Vec<f32>>,
    /// Each pair's query, an index into `queries`.
    pub(super) query_of: Vec<usize>,
    /// Each pair's item states.
    pub(super) items: Vec<Vec<f32>>,
}

#[cfg(test)]
mod tests {
    use super::super::tests::{close, embedder, texts, trainer_and_served, PRETTR};
    use super::super::CrossEncoderSettings;
    use super::*;
    use crate::Embedder;

    /// PreTTR: scoring with the item side read from stored states gives the logits of computing
    /// it on the fly (to 1e-4), on both paths; a joint model and a mismatched file are refused.
    #[test]
    fn precomputed_item_states_score_as_computing_them() {
        let embedder = embedder();
        let texts = texts();
        let (trainer, mut served) = trainer_and_served(&embedder, PRETTR);
        let items: Vec<&str> = texts.iter().map(|(_, d)| d.as_str()).collect();
        let header = served.states_header("sha", items.len()).unwrap();
        let computed = served.item_states(&items).unwrap();
        assert_eq!(computed[1].tokens(), 16, "the long text keeps its first 16 tokens");
        assert!(computed[2].tokens() == 3, "[CLS] b [SEP]");
        let on_the_fly: Vec<(&str, ItemText<'_>)> =
            texts.iter().map(|(q, d)| (q.as_str(), ItemText::text(d))).collect();
        let stored: Vec<(&str, ItemText<'_>)> = texts
            .iter()
            .enumerate()
            .map(|(i, (q, _))| (q.as_str(), ItemText { index: Some(i as u32), text: "not read" }))
            .collect();
        let want = served.score_pairs(&on_the_fly).unwrap();
        let graph_want = trainer.score_pairs(&on_the_fly).unwrap();
        served.attach_states(ItemStates::from_items(header.clone(), computed.clone()).unwrap()).unwrap();
        let got = served.score_pairs(&stored).unwrap();
        assert!(close(&got, &want, 1e-4), "stored {got:?} vs on the fly {want:?}");
        let mut trainer = trainer;
        trainer.attach_states(ItemStates::from_items(header.clone(), computed.clone()).unwrap()).unwrap();
        let graph_got = trainer.score_pairs(&stored).unwrap();
        assert!(close(&graph_got, &graph_want, 1e-4), "stored {graph_got:?} vs on the fly {graph_want:?}");

        let (_, mut joint) = trainer_and_served(&embedder, CrossEncoderSettings::JOINT);
        assert!(joint.states_header("sha", 3).is_none());
        assert!(joint.attach_states(ItemStates::from_items(header.clone(), computed.clone()).unwrap()).is_err());
        let mut other = header;
        other.item_tokens = 32;
        let (_, mut served) = trainer_and_served(&embedder, PRETTR);
        assert!(served.attach_states(ItemStates::from_items(other, computed).unwrap()).is_err());
    }

    /// A search that embeds the query hands the reranker that pass's states after its frozen
    /// layers: the same logits as the reranker's own query pass, on hyrank's kernels and on
    /// candle's (a GPU's path), by the host path and the device gather, and the same vector as
    /// a plain embed. States it cannot start from (other layers, another query's, another
    /// encoder's with the same weights) are not used, and the counts say which was which.
    #[test]
    fn query_states_from_the_embedding_pass_score_as_the_rerankers_own_pass() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2");
        let mut settings = crate::EmbedderSettings::new(dir);
        settings.device = crate::DeviceChoice::Cpu;
        let texts = texts();
        let items: Vec<ItemText<'_>> = texts.iter().map(|(_, d)| ItemText::text(d)).collect();
        let stored: Vec<ItemText<'_>> =
            (0..texts.len() as u32).map(|index| ItemText { index: Some(index), text: "not read" }).collect();
        for candle in [false, true] {
            let embedder =
                if candle { Embedder::load_on_candle(&settings) } else { Embedder::load(&settings) }.unwrap();
            let forced = std::env::var("HYRANK_CPU_KERNELS").as_deref() == Ok("candle");
            assert_eq!(embedder.encoder().native().is_none(), candle || forced);
            let (_, served) = trainer_and_served(&embedder, PRETTR);
            let header = served.states_header("sha", texts.len()).unwrap();
            let item_side = served.item_states(&items.iter().map(|t| t.text).collect::<Vec<_>>()).unwrap();
            let states = ItemStates::from_items(header, item_side).unwrap();
            let on_device = states.to_device(&Device::Cpu).unwrap();
            for (query, _) in &texts {
                let want = served.score(query, &items).unwrap();
                let (vector, kept) = embedder.embed_with_states(query, PRETTR.frozen_layers).unwrap();
                assert_eq!(vector, embedder.embed(query).unwrap(), "the same vector as a plain embed");
                let before = served.query_passes();
                let got = served.score_with(query, Some(&kept), &items).unwrap();
                assert!(close(&got, &want, 1e-5), "candle {candle}: {got:?} vs {want:?}");
                let after = served.query_passes();
                assert_eq!((after.reused - before.reused, after.run - before.run), (1, 0), "candle {candle}");
                // The gather of stored item states (a GPU's path) takes them the same way.
                let pairs: Vec<(&str, ItemText<'_>)> = stored.iter().map(|t| (query.as_str(), *t)).collect();
                let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let own = served.frozen_gathered(&pairs, &[], &states, &on_device).unwrap();
                let taken = served.frozen_gathered(&pairs, &[&kept], &states, &on_device).unwrap();
                let (own, taken) = (flat(&own.hidden), flat(&taken.hidden));
                assert!(close(&taken, &own, 1e-5), "candle {candle}: gathered pass");
            }
            // A window wider than one pass (8 pairs on a CPU): the query's side is computed or
            // taken once for all the passes, and counted once.
            let query = texts[0].0.as_str();
            let many: Vec<ItemText<'_>> = items.iter().cycle().take(20).copied().collect();
            let (_, kept) = embedder.embed_with_states(query, PRETTR.frozen_layers).unwrap();
            for states in [None, Some(&kept)] {
                let before = served.query_passes();
                let scores = served.score_with(query, states, &many).unwrap();
                let after = served.query_passes();
                let counted = (after.reused - before.reused, after.run - before.run);
                assert_eq!(counted, if states.is_some() { (1, 0) } else { (0, 1) }, "candle {candle}");
                let want: Vec<f32> = served.score(query, &items).unwrap().into_iter().cycle().take(20).collect();
                assert!(close(&scores, &want, 1e-5), "candle {candle}: {scores:?} vs {want:?}");
            }
            // States the reranker cannot start from: it runs its own pass, with the same logits.
            let query = texts[0].0.as_str();
            let want = served.score(query, &items).unwrap();
            let other_layers = embedder.embed_with_states(query, 3).unwrap().1;
            let other_query = embedder.embed_with_states(texts[1].0.as_str(), 4).unwrap().1;
            let other_encoder = Embedder::load(&settings).unwrap().embed_with_states(query, 4).unwrap().1;
            for unusable in [&other_layers, &other_query, &other_encoder] {
                let before = served.query_passes();
                assert_eq!(served.score_with(query, Some(unusable), &items).unwrap(), want, "{unusable:?}");
                let after = served.query_passes();
                assert_eq!((after.reused - before.reused, after.run - before.run), (0, 1), "{unusable:?}");
            }
            // The same text tokenized otherwise: a reranker that truncates at 6 tokens is not
            // handed the embedder's states of a longer query (its own input is the first 6).
            let short = CrossEncoderSettings { max_tokens: 6, item_tokens: Some(6), ..PRETTR };
            let (_, truncating) = trainer_and_served(&embedder, short);
            let long = texts[1].1.as_str();
            let kept = embedder.embed_with_states(long, 4).unwrap().1;
            let want = truncating.score(long, &items).unwrap();
            let before = truncating.query_passes();
            assert_eq!(truncating.score_with(long, Some(&kept), &items).unwrap(), want);
            let after = truncating.query_passes();
            assert_eq!((after.reused - before.reused, after.run - before.run), (0, 1), "other ids");
        }
    }

    /// The item states gathered where the model runs (a GPU's path) give the host path's frozen
    /// pass bit for bit. Run on candle's CPU tensors, whose gather, cast and products are the
    /// operations the CUDA path runs.
    #[test]
    fn states_gathered_on_the_device_equal_the_host_path() {
        let embedder = embedder();
        let texts = texts();
        let (mut trainer, _) = trainer_and_served(&embedder, PRETTR);
        let items: Vec<&str> = texts.iter().map(|(_, d)| d.as_str()).collect();
        let header = trainer.states_header("sha", items.len()).unwrap();
        let states = ItemStates::from_items(header, trainer.item_states(&items).unwrap()).unwrap();
        // Through the file, so that the mapped branch of `to_device` is the one gathered from.
        let file = tempfile::NamedTempFile::new().unwrap();
        states.write(file.path()).unwrap();
        let states = ItemStates::open(file.path(), states.header()).unwrap();
        let on_device = states.to_device(&Device::Cpu).unwrap();
        trainer.attach_states(states).unwrap();
        assert!(trainer.device_states.is_none(), "on a CPU the states are read where they are, not copied");
        // Two queries interleaved, items out of catalog order and one twice, lengths 3 to 16.
        let (a, b) = (texts[0].0.as_str(), texts[1].0.as_str());
        let stored = |index: u32| ItemText { index: Some(index), text: "not read" };
        let pairs = [(a, stored(1)), (b, stored(0)), (a, stored(2)), (b, stored(1))];
        // Items with no stored states (added after the generation) among the stored ones:
        // computed on the host, sent with the queries' rows.
        let outside = ItemText::text("outside the catalog");
        let mixed = [(a, stored(0)), (b, outside), (a, ItemText::text(&texts[1].1)), (b, stored(2))];
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for pairs in [&pairs[..], &mixed[..]] {
            let host = trainer.frozen_prettr(pairs, &[]).unwrap();
            let gathered = trainer.frozen_gathered(pairs, &[], trainer.states.as_ref().unwrap(), &on_device).unwrap();
            assert_eq!(host.hidden.dims(), gathered.hidden.dims());
            assert_eq!(flat(&host.hidden), flat(&gathered.hidden));
            assert_eq!(flat(&host.mask), flat(&gathered.mask));
            assert_eq!(flat(&host.query_mask), flat(&gathered.query_mask));
            assert_eq!(flat(&host.item_mask), flat(&gathered.item_mask));
        }
    }
}
