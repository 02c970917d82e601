//! Access lists (whitelist/blacklist).
