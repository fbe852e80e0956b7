//! Built-in evaluation: relevance of search configurations on judged data ([`search`]), with
//! metrics defined as trec_eval defines them ([`metrics`]).

pub mod metrics;
pub mod recommend;
pub mod search;
