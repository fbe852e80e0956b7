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

/// `cmd` and its subcommands with every option that takes a value reading `-1` as one. clap
/// otherwise reads it as an unknown flag ("unexpected argument '-1' found"), naming no option;
/// read as a value, a bound's refusal names the option (`--keep`: "invalid digit").
pub(crate) fn negative_numbers_are_values(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|arg| if arg.get_action().takes_values() { arg.allow_negative_numbers(true) } else { arg })
        .mut_subcommands(negative_numbers_are_values)
}
