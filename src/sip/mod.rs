//! SIP: the message layer (sans-IO syntax) and transactions (sans-IO state machines). Transports and
//! dialogs build on them.

pub mod message;
pub mod transaction;
