//! Similar: the seed item's content neighbours and CF neighbours, fused.

use std::time::Instant;

use super::{Collaborative, Engine};
use crate::call::Call;
use crate::error::Result;
use crate::explain::RetrieverKind;
use crate::request::{check_page, Results, SimilarRequest, Timings};
use crate::retrieve::Retriever;

impl Engine {
    /// Items similar to a given item, by content and by CF, fused; the seed itself is left out.
    ///
    /// # Errors
    /// An invalid request (the field named) or an unknown seed item.
    pub fn similar(&self, request: &SimilarRequest) -> Result<Results> {
        self.similar_in(request, &Call::now())
    }

    /// [`Engine::similar`] for `call`: nothing starts once its client has gone (it has no
    /// rerank, so no budget).
    ///
    /// # Errors
    /// As [`Engine::similar`]; [`crate::Error::Cancelled`] when the client went away.
    #[tracing::instrument(skip_all, fields(k = request.k, offset = request.offset))]
    pub fn similar_in(&self, request: &SimilarRequest, call: &Call) -> Result<Results> {
        call.check()?;
        let start = Instant::now();
        let candidates = check_page(request.page(), request.candidates)?;
        request.weights.check()?;
        request.weights.refuse_bm25("similar items")?;
        self.check_facets(&request.facets)?;
        self.check_sort(&request.sort)?;
        let seed = self.visible_index_of(&request.item)?;
        let mut timings = Timings::default();
        let allow = self.allow(&request.filters, &request.exclude, &mut timings)?.excluding(self.total_len(), [seed]);
        let live_items = self.live_items();
        let mean = self.floor_mean(&request.fusion, &live_items, &[seed]);
        let content = self.vector_at(&live_items, seed).unwrap_or_default();
        let mut retrievers = vec![(
            Retriever::Dense {
                index: &self.dense,
                live: Some(&live_items),
                vector: Some(&content),
                mean: mean.as_deref().map(Vec::as_slice),
            },
            request.weights.of(RetrieverKind::Dense),
        )];
        // CF reads a live row that replaced a stored one as that row (as in histories): a put
        // of an item, changed or not, keeps its CF neighbours until the next build.
        let cf_seed = live_items.built_row(seed);
        let (seeds, own) = ([(cf_seed, 1.0)], [cf_seed]);
        match &self.cf {
            Some(Collaborative::Als { items, .. }) => {
                let factors = items.vector(cf_seed).unwrap_or_default();
                // An item nobody interacted with has zero factors: its CF neighbours would be
                // ties, so CF does not run for it.
                if crate::cf::has_opinion(factors) {
                    let retriever = Retriever::Cf { items, factors, cold_items: request.cold_items, own: &own };
                    retrievers.push((retriever, request.weights.of(RetrieverKind::Cf)));
                }
            }
            // The seed's row of B: the items its users also liked, net of what explains them
            // better. A cold seed has an empty row, so the list is empty.
            Some(Collaborative::Ease(model)) if !model.cold().get(cf_seed as usize).copied().unwrap_or(true) => {
                let retriever = Retriever::ItemModel { model, seeds: &seeds, cold_items: request.cold_items };
                retrievers.push((retriever, request.weights.of(RetrieverKind::Cf)));
            }
            Some(Collaborative::Ease(_)) | None => {}
        }
        let mut fused = self.retrieve_and_fuse(&retrievers, candidates, &allow, &request.fusion, &mut timings)?;
        self.sort(&request.sort, request.page(), &mut fused, &mut timings)?;
        let (hits, _) = self.finish(&fused, request.page(), None, None, call, &mut timings)?;
        let facets = self.facets(&request.facets, &fused, &mut timings)?;
        Ok(self.answer(hits, &fused, (&request.filters, &request.exclude), facets, start, timings))
    }
}
