//! The proxy (stub; being written).
