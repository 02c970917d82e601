//! The single-threaded mio event loop: every socket, connection and timer lives here.

pub mod conn_id;
