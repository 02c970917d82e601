//! Counters and the /stats output.
