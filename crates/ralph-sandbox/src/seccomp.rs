//! The seccomp filter (stub; being written).
