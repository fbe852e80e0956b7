//! The `hyrank` subcommands, one file per question: build an index (`index`), check the model
//! (`check`), measure relevance (`eval`), train a reranker (`train`), ship generations through
//! object storage (`ship`); `shared` holds the flags
//! several of them read, and `unused` refuses flags the rest of a command line makes moot.

pub(crate) mod check;
pub(crate) mod eval;
pub(crate) mod index;
pub(crate) mod shared;
pub(crate) mod ship;
pub(crate) mod train;
pub(crate) mod unused;

pub(crate) use check::*;
pub(crate) use eval::*;
pub(crate) use index::*;
pub(crate) use shared::*;
pub(crate) use ship::*;
pub(crate) use train::*;
pub(crate) use unused::refuse_moot_flags;
