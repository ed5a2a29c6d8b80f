//! The engine.

pub mod settings;

pub use settings::*;
