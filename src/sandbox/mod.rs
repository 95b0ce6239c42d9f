//! Cloud API sandbox (being built).
