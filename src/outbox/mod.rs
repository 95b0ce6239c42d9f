//! The outbox (being built).
pub mod gate;
pub mod model;
