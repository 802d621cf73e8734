//! SIP: the message layer (sans-IO syntax). Transports, transactions and dialogs build on it.

pub mod message;
