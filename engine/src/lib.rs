//! hyrank's retrieval and ranking core.
//!
//! Data flows through these modules in this order (see ARCHITECTURE.md):
//! [`item`] → [`embed`] (MiniLM through candle) → [`cf`] (ALS) → [`dense`] (HNSW) and
//! [`lexical`] (tantivy BM25) → [`store`] (sled) → [`generation`] (manifest, atomic publish);
//! at query time [`engine::Engine`] runs the retrievers, [`fusion`] merges their lists,
//! [`rerank`] rescores the top, and [`explain`] records how every score was composed.
//!
//! The engine knows nothing of HTTP or command lines.
#![warn(missing_docs)]

pub mod batcher;
pub mod cache;
pub mod cf;
pub mod cross;
pub mod dense;
pub mod device;
pub mod embed;
pub mod engine;
pub mod error;
pub mod explain;
pub mod filter;
pub mod fusion;
pub mod generation;
pub mod item;
pub mod lexical;
pub mod rerank;
pub mod store;

pub use device::DeviceChoice;
pub use embed::{Embedder, EmbedderSettings};
pub use engine::{ColdItems, Engine, Mode, RecommendMode, RecommendRequest, Results, SearchRequest, SimilarRequest};
pub use error::{Error, ErrorKind, Result};
pub use item::{FieldValue, Item};
