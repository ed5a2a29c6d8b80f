//! Host allow-list (stub; being written).
