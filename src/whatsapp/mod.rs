//! WhatsApp Cloud API client (being built).
