//! The small vocabulary every ralph crate speaks: token counts ([`Tokens`]), the exit-code
//! table ([`exit_codes`]) and the bounds of a believable call ([`plausible`]). It has no
//! dependencies on the rest of ralph so that agents, the store, the engine and the CLI can all
//! use one type instead of converting field by field.

pub mod exit_codes;
pub mod plausible;
mod tokens;

pub use tokens::Tokens;
