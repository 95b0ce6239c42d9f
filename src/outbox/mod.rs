//! The outbox (being built).
pub mod gate;
pub mod model;
pub mod pacing;
pub mod reconcile;
pub mod render;
pub mod retry;
pub mod writeback;
