//! hyrank's retrieval and ranking core.
//!
//! Data flows through these modules in this order (see ARCHITECTURE.md). At build time:
//! [`item`] → [`embed`] (MiniLM through candle; the transformer is [`bert`]) → [`cf`] (ALS)
//! → [`dense`] (HNSW) and [`lexical`] (tantivy BM25) → [`store`] (sled) → [`generation`] (the
//! on-disk format, manifest, atomic publish). At query time: a [`request`] reaches the
//! [`engine::Engine`] opened on a generation with a model [`runtime`]; [`retrieve`] runs the
//! retrievers over one allow mask ([`filter`]), [`fusion`] merges their lists, [`rerank`]
//! rescores the top (the [`cross`] encoder's logit through the learned [`combination`]), and
//! [`explain`] records how every score was composed.
//!
//! The engine knows nothing of HTTP or command lines.
#![warn(missing_docs)]

pub mod analysis;
pub mod batcher;
pub mod bert;
pub mod cache;
pub mod call;
pub mod cf;
pub mod combination;
pub mod cross;
pub mod dense;
pub mod device;
pub mod embed;
pub mod engine;
pub mod error;
pub mod explain;
pub mod facets;
pub mod filter;
pub mod fusion;
pub mod gate;
pub mod generation;
pub mod item;
pub mod json;
pub(crate) mod kernels;
pub mod lexical;
pub mod live;
pub(crate) mod profile;
pub mod request;
pub mod rerank;
pub mod retrieve;
pub mod runtime;
pub mod sort;
pub mod store;

pub use bert::Precision;
pub use device::DeviceChoice;
pub use embed::{Embedder, EmbedderSettings, Pieces};
pub use engine::{Engine, WarmUp};
pub use error::{Error, ErrorKind, Result};
pub use item::{FieldValue, Item};
pub use request::{ColdItems, Mode, RecommendMode, RecommendRequest, Results, SearchRequest, SimilarRequest};
pub use runtime::{Runtime, RuntimeSettings};
