//! Per-program-family judges that are newer than the big table in `policy.rs`. Each module
//! owns one family's rules; `policy.rs` calls down into them and they never call back up.
//! (Issue 14 moves the rest of `policy.rs` here, one family at a time.)

pub(crate) mod remote;
