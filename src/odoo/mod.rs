//! Odoo JSON-RPC client (being built).
