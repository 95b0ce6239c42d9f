//! The outbox (being built).
