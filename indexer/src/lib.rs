//! hyrank's batch indexer: validates a catalog and interactions ([`input`]), then builds and
//! publishes one index generation ([`pipeline`], with the CF model [`cf_choice`] picks); reads relevance supervision ([`judgments`]) for
//! the reranker trainer ([`train`]) and the evaluation ([`eval`]).
#![warn(missing_docs)]

pub mod cf_choice;
mod collaborative;
pub mod error;
pub mod eval;
pub mod input;
pub mod judgments;
mod live_fold;
pub mod pipeline;
pub mod progress;
pub mod shards;
mod summary;
pub mod train;

pub use error::{IndexError, Reject};
pub use input::{CatalogFormat, CatalogKind, InteractionFormat};
pub use pipeline::{build, IndexSettings, OnError, Summary};
